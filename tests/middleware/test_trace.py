"""`trace_id`: the W3C `traceparent` trace id a request came with, or a new one, on its
access line, on every line logged inside it, and in its problem+json bodies."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from service.context import RequestFacts
from service.middleware.request_context import read_facts

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
HEX32 = re.compile(r"[0-9a-f]{32}")


def access_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(x) for x in out.splitlines() if '"http.request"' in x]


def facts_of(*traceparents: bytes) -> RequestFacts:
    scope = {"headers": [(b"traceparent", v) for v in traceparents], "client": ("192.0.2.1", 1)}
    return read_facts(scope)[0]


async def test_an_incoming_traceparent_supplies_the_trace_id(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    r = await client.get("/v1/users/me", headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert r.status_code == 401
    assert r.json()["trace_id"] == TRACE and r.json()["request_id"] == r.headers["x-request-id"]
    out = capsys.readouterr().out
    (line,) = access_lines(out)
    assert line["trace_id"] == TRACE
    # every line of the request carries it (here the security event)
    invalid = [json.loads(x) for x in out.splitlines() if '"auth.invalid_token"' in x]
    assert all(x["trace_id"] == TRACE for x in invalid)


async def test_without_a_valid_traceparent_each_request_gets_a_new_trace_id(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    bodies = []
    for headers in (
        {},
        {"traceparent": f"00-{TRACE.upper()}-{PARENT}-01"},  # uppercase hex
        {"traceparent": f"00-{'0' * 32}-{PARENT}-01"},  # all-zero trace id
        {"traceparent": f"ff-{TRACE}-{PARENT}-01"},  # version ff
        {"traceparent": f"00-{TRACE}-{PARENT}-01-extra"},  # version 00 has four fields
        {"traceparent": f"00-{TRACE}-{'0' * 16}-01"},  # all-zero parent
        {"traceparent": f"00-{TRACE}-{PARENT}-1"},  # short flags
    ):
        r = await client.get("/v1/nope", headers=headers)
        assert r.status_code == 404
        bodies.append(r.json())
    ids = [b["trace_id"] for b in bodies]
    assert all(HEX32.fullmatch(i) for i in ids) and TRACE not in ids
    assert len(set(ids)) == len(ids)
    assert [x["trace_id"] for x in access_lines(capsys.readouterr().out)] == ids


def test_traceparent_parsing() -> None:
    valid = facts_of(f"00-{TRACE}-{PARENT}-01".encode())
    assert (valid.trace_id, valid.parent_span_id, valid.sampled) == (TRACE, PARENT, True)
    later = facts_of(f"cc-{TRACE}-{PARENT}-00-what-comes-later".encode())
    assert (later.trace_id, later.sampled) == (TRACE, False)
    twice = facts_of(f"00-{TRACE}-{PARENT}-01".encode(), f"00-{TRACE}-{PARENT}-01".encode())
    assert twice.trace_id != TRACE and twice.parent_span_id is None
    assert HEX32.fullmatch(facts_of().trace_id)


async def test_answers_of_the_asgi_layer_carry_the_trace_id_too(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/x%00", headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert r.status_code == 400 and r.json()["trace_id"] == TRACE
