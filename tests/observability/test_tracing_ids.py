"""A new trace takes the trace id the request already carries (the one its access line
names), so a log line and its trace meet; an incoming `traceparent` still wins."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from service import tracing
from service.context import current_request

from .otlp_receiver import otlp_receiver

LOGGED = "4bf92f3577b34da6a3ce929d0e0e4736"
SCOPE = {"type": "http", "scheme": "https", "http_version": "2", "headers": []}


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with otlp_receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        tracing.start()
        try:
            yield
        finally:
            asyncio.run(tracing.stop(2))


def request(trace_id: str | None) -> SimpleNamespace:
    return SimpleNamespace(
        request_id="r",
        client_ip="203.0.113.7",
        method="GET",
        path="/v1/notes",
        route="/v1/notes",
        status=200,
        trace_id=trace_id,
    )


def started(info: SimpleNamespace, headers: list[tuple[bytes, bytes]]) -> str:
    token = current_request.set(info)  # type: ignore[arg-type]
    try:
        handle = tracing.request_started(
            {**SCOPE, "headers": headers},
            info,  # type: ignore[arg-type]
            info.method,
            info.path,
        )
        trace_id = format(handle[0].get_span_context().trace_id, "032x")
        assert tracing.trace_id() == trace_id  # what a log line inside the request reads
        tracing.request_finished(handle, info.method, info.route, info.status)
        return trace_id
    finally:
        current_request.reset(token)


def test_a_new_trace_takes_the_requests_trace_id(traced: None) -> None:
    assert started(request(LOGGED), []) == LOGGED


def test_an_incoming_traceparent_wins(traced: None) -> None:
    incoming = "0af7651916cd43dd8448eb211c80319c"
    header = (b"traceparent", f"00-{incoming}-b7ad6b7169203331-01".encode())
    assert started(request(LOGGED), [header]) == incoming


@pytest.mark.parametrize("given", [None, "", "0" * 32, "z" * 32])
def test_without_a_usable_id_a_new_one_is_drawn(traced: None, given: str | None) -> None:
    drawn = started(request(given), [])
    assert len(drawn) == 32 and int(drawn, 16) != 0 and drawn != given
