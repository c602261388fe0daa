"""Slow request bodies from a few addresses cannot starve everyone else (the in-flight
cap's per-address share): the real server, real TLS connections from distinct loopback
source addresses."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.metrics import value
from tests.support.server import Server, run_server

pytestmark = pytest.mark.server

ATTACKERS = [f"127.0.0.{i}" for i in range(2, 6)]
PER_ADDRESS = 75  # 300 slow bodies in all, against a cap of 128
CAP = 128


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"PORTCULLIS_MAX_INFLIGHT": str(CAP)}
    with run_server(tmp_path_factory.mktemp("slow-bodies"), env=env) as srv:
        yield srv


async def slow_body(server: Server, ctx: ssl.SSLContext, source: str) -> asyncio.StreamWriter:
    """POST /v1/auth/revoke declaring 200 bytes of body and sending 1: the request holds
    its slot while the server waits for the rest."""
    _, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, ssl=ctx, server_hostname="localhost", local_addr=(source, 0)
    )
    writer.write(
        b"POST /v1/auth/revoke HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\nt"
    )
    await writer.drain()
    return writer


async def in_flight(server: Server, ctx: ssl.SSLContext) -> float:
    async with httpx.AsyncClient(verify=ctx, base_url=server.url) as scraper:
        text = (await scraper.get("/metrics")).text
    return value(text, "portcullis_http_requests_in_flight")


async def test_four_addresses_of_slow_bodies_leave_room_for_a_fifth(server: Server) -> None:
    ctx = server.ssl_context()
    writers: list[asyncio.StreamWriter] = []
    try:
        for _ in range(PER_ADDRESS // 15):  # in waves, so the handshakes keep up
            wave = await asyncio.gather(
                *(slow_body(server, ctx, source) for source in ATTACKERS for _ in range(15)),
                return_exceptions=True,
            )
            writers += [w for w in wave if isinstance(w, asyncio.StreamWriter)]
            for failed in wave:  # the rest of the wave is closed below all the same
                if isinstance(failed, BaseException):
                    raise failed
        # The attack holds at least three quarters of the cap...
        deadline = time.monotonic() + 5
        while (held := await in_flight(server, ctx)) < CAP * 3 // 4:
            assert time.monotonic() < deadline, held
            await asyncio.sleep(0.1)
        # ...and a client at another address is served at once, every time.
        transport = httpx.AsyncHTTPTransport(verify=ctx, local_address="127.0.0.6")
        async with httpx.AsyncClient(transport=transport, base_url=server.url) as client:
            for _ in range(5):
                started = time.monotonic()
                r = await client.post("/v1/auth/revoke", data={"token": "not-a-token"}, timeout=2)
                assert r.status_code == 200, r.text
                assert time.monotonic() - started < 2
            answers = await asyncio.gather(
                *(client.post("/v1/auth/revoke", data={"token": "x"}, timeout=2) for _ in range(8))
            )
            assert [r.status_code for r in answers] == [200] * 8
    finally:
        # Aborted, not closed: a TLS close waits for the peer's close_notify (up to 30 s),
        # and a socket still open when the test's event loop ends is reported unclosed
        # during whichever test runs next.
        for writer in writers:
            writer.transport.abort()
        await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
