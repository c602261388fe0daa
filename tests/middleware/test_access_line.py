"""The access line, rendered by the one structlog chain: same keys in the same order as
every other line, and secret-looking values redacted in every text field."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from service.context import RequestFacts, current_request
from service.logging import REDACTED, access_line, configure_logging, get_logger

JWT_LIKE = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def write_access_line(info: dict[str, Any], *, seconds: float) -> None:
    fields = {"method": "GET", "path": "/", "route": None, "principal": None, "status": 200}
    access_line(**(fields | info), seconds=seconds)


def test_same_line_as_structlog_renders(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    facts = RequestFacts(
        request_id="rid-1", trace_id="0af7651916cd43dd8448eb211c80319c", client_ip="203.0.113.10"
    )
    info: dict[str, Any] = {
        "client_ip": facts.client_ip,
        "method": "GET",
        "path": '/a"é\n',
        "route": "/v1/x",
        "principal": "p-1",
        "status": 204,
    }
    token = current_request.set(facts)
    try:
        get_logger("portcullis.access").info(
            "http.request",
            method=info["method"],
            path=info["path"],
            route=info["route"],
            status=info["status"],
            duration_ms=1.235,
            client_ip=info["client_ip"],
            principal=info["principal"],
        )
        write_access_line(info, seconds=0.0012346)
    finally:
        current_request.reset(token)
    old, new = (json.loads(x) for x in capsys.readouterr().out.splitlines())
    old.pop("ts"), new.pop("ts")
    assert list(new.items()) == list(old.items())


def test_access_line_respects_the_level(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING")
    try:
        write_access_line({"client_ip": "x"}, seconds=0.0)
        assert capsys.readouterr().out == ""
    finally:
        configure_logging("INFO")


async def test_secret_looking_values_redacted_in_every_field(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    await client.get(f"/healthz?x={JWT_LIKE}", headers={"X-Request-ID": JWT_LIKE})
    await client.get(f"/v1/{JWT_LIKE}")
    access = [x for x in capsys.readouterr().out.splitlines() if '"http.request"' in x]
    assert len(access) == 2 and all(JWT_LIKE not in x for x in access)
    first, second = (json.loads(x) for x in access)
    assert first["request_id"] == REDACTED and first["path"] == "/healthz"
    assert second["path"] == f"/v1/{REDACTED}"


async def test_a_serving_worker_writes_the_lines_of_one_loop_iteration_at_once() -> None:
    """`batch_lines` (service/asgi.py): the lines of an iteration leave together,
    in order, within the next iteration; without it each line leaves at once."""
    import asyncio

    from service import logging as service_logging

    class Stream:
        def __init__(self) -> None:
            self.writes: list[str] = []

        def write(self, text: str) -> int:
            self.writes.append(text)
            return len(text)

        def flush(self) -> None:
            return None

    stream = Stream()
    configure_logging("INFO", stream=stream)
    from service.logsink import sink

    def write_access_line(info: dict[str, Any], *, seconds: float) -> None:
        token = current_request.set(RequestFacts(info.pop("request_id"), "1" * 32, "x"))
        try:
            access_line(**(info | {"method": "GET", "path": "/", "route": None}), seconds=seconds)
        finally:
            current_request.reset(token)

    try:
        write_access_line(
            {"request_id": "a", "client_ip": "x", "principal": None, "status": 200}, seconds=0.0
        )
        assert len(stream.writes) == 1  # not batched: at once
        service_logging.batch_lines()
        for rid in ("b", "c", "d"):
            write_access_line(
                {"request_id": rid, "client_ip": "x", "principal": None, "status": 200}, seconds=0.0
            )
        assert len(stream.writes) == 1  # held for the next iteration
        await asyncio.sleep(0)
        assert len(stream.writes) == 2  # one write for the three lines
        ids = [json.loads(line)["request_id"] for line in stream.writes[1].splitlines()]
        assert ids == ["b", "c", "d"]
    finally:
        sink.batch = False
        configure_logging("INFO")
