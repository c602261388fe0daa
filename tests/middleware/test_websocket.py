"""WebSocket handshakes get exactly what any request gets, and never 101: the real
server over a raw socket, and the in-flight cap in process."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from quart_rate_limiter import rate_exempt

from service import create_app
from service.security.authn import public
from tests.support.server import Server, run_server

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"PORTCULLIS_BLOCK_AFTER": "4/minute"}
    with run_server(tmp_path_factory.mktemp("websocket"), env=env) as srv:
        yield srv


def handshake(server: Server, target: bytes, rid: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """A valid WebSocket opening handshake (RFC 6455 §4.1) with this request target; the
    answer's status, headers and body."""
    raw = socket.create_connection(("127.0.0.1", server.port), 10)
    with server.ssl_context().wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\nX-Request-ID: " + rid + b"\r\n\r\n"
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get(b"content-length", b"0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(lines[0].split(b" ")[1]), headers, body


def access_line(server: Server, rid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        for line in server.log.read_text().splitlines():
            if '"http.request"' in line and f'"request_id": "{rid}"' in line:
                return dict(json.loads(line))
        assert time.monotonic() < deadline, f"no access line for {rid}"
        time.sleep(0.1)


def assert_like_any_answer(status: int, headers: dict[bytes, bytes], rid: bytes) -> None:
    assert status != 101 and b"sec-websocket-accept" not in headers
    assert headers[b"x-request-id"] == rid
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"x-frame-options"] == b"DENY"
    assert headers[b"strict-transport-security"].startswith(b"max-age=")
    assert b"server" not in headers


@pytest.mark.server
def test_an_odd_target_gets_400_with_every_header_and_an_access_line(server: Server) -> None:
    status, headers, body = handshake(server, b"//evil", b"ws-evil")
    assert status == 400 and headers[b"content-type"] == b"application/problem+json"
    assert json.loads(body)["request_id"] == "ws-evil"
    assert_like_any_answer(status, headers, b"ws-evil")
    line = access_line(server, "ws-evil")
    assert (line["method"], line["status"], line["path"]) == ("GET", 400, "//evil")


@pytest.mark.server
def test_routes_answer_as_to_a_get_never_101(server: Server) -> None:
    status, headers, body = handshake(server, b"/v1/users/me", b"ws-me")
    assert status == 401 and headers[b"www-authenticate"] == b'Bearer realm="portcullis"'
    assert headers[b"cache-control"] == b"no-store"
    assert_like_any_answer(status, headers, b"ws-me")
    assert access_line(server, "ws-me")["route"] == "/v1/users/me"
    status, headers, body = handshake(server, b"/healthz", b"ws-health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert_like_any_answer(status, headers, b"ws-health")


@pytest.mark.server
def test_a_blocked_address_is_refused_on_a_handshake_too(server: Server) -> None:
    for i in range(6):  # 404s on /v1 count toward PORTCULLIS_BLOCK_AFTER (4/minute)
        status, _, _ = handshake(server, f"/v1/nothing-{i}".encode(), f"ws-scan-{i}".encode())
        assert status in (404, 403)
    deadline = time.monotonic() + 5
    while True:
        status, headers, body = handshake(server, b"/v1/users/me", b"ws-blocked")
        if status == 403 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 403 and json.loads(body)["status"] == 403
    assert_like_any_answer(status, headers, b"ws-blocked")


async def test_a_handshake_waits_for_an_in_flight_slot_like_any_request(
    settings_factory: Any,
) -> None:
    app = create_app(settings_factory(max_inflight=1, inflight_wait_seconds=0.2))
    release = asyncio.Event()

    @rate_exempt
    @public
    async def slow() -> dict[str, str]:
        await release.wait()
        return {"done": "yes"}

    app.add_url_rule("/slow", "slow", slow)
    sent: list[dict[str, Any]] = []

    def receiver() -> Any:
        connected = False

        async def receive() -> dict[str, Any]:
            nonlocal connected
            if not connected:
                connected = True
                return {"type": "websocket.connect"}
            await asyncio.sleep(3600)
            return {"type": "websocket.disconnect", "code": 1000}

        return receive

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    def scope(path: str) -> dict[str, Any]:
        return {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "scheme": "wss",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"localhost")],
            "client": ("203.0.113.7", 1),
            "server": ("127.0.0.1", 8443),
            "subprotocols": [],
            "extensions": {"websocket.http.response": {}},
        }

    asgi: Any = app.asgi_app
    async with app.test_app():
        held = asyncio.create_task(asgi(scope("/slow"), receiver(), _noop))
        await asyncio.sleep(0.2)
        await asgi(scope("/healthz/x"), receiver(), send)
        release.set()
        await held
    start = next(m for m in sent if m["type"] == "websocket.http.response.start")
    assert start["status"] == 503 and (b"retry-after", b"1") in start["headers"]
    assert all(m["type"] != "websocket.accept" for m in sent)


async def _noop(_message: dict[str, Any]) -> None:
    return None
