"""HTTP/1.1 pipelining on the real server: requests sent together in one write are each
answered, in order, on the same connection (RFC 9112 §9.3.2). docs/upstream.md records
what was examined (Hypercorn answers them; a TLS client that half-closes loses them)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import h11
import pytest

from tests.support.server import Server, run_server

pytestmark = pytest.mark.server

Request = tuple[
    bytes, bytes, tuple[tuple[bytes, bytes], ...], bytes
]  # method, target, headers, body

GET: Request = (b"GET", b"/healthz", (), b"")
UNAUTHORIZED: Request = (b"GET", b"/v1/users/me", ((b"authorization", b"Bearer x"),), b"")
POST: Request = (
    b"POST",
    b"/v1/auth/revoke",
    ((b"content-type", b"application/x-www-form-urlencoded"),),
    b"token=x",
)


def send_events(client: h11.Connection, request: Request) -> bytes:
    method, target, headers, body = request
    framing = [(b"content-length", str(len(body)).encode())] if body else []
    data = (
        client.send(
            h11.Request(
                method=method, target=target, headers=[(b"host", b"localhost"), *headers, *framing]
            )
        )
        or b""
    )
    if body:
        data += client.send(h11.Data(data=body)) or b""
    return data + (client.send(h11.EndOfMessage()) or b"")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("pipelining")) as srv:
        yield srv


def connect(server: Server, *, tls: bool) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", server.port if tls else server.http_port), 10)
    if not tls:
        return raw
    context = server.ssl_context()
    context.set_alpn_protocols(["http/1.1"])
    return context.wrap_socket(raw, server_hostname="localhost")


def exchange(sock: socket.socket, requests: list[Request]) -> list[tuple[int, bytes, bool]]:
    """Send every request in one write, then read the answers: (status, X-Request-ID,
    says Connection: close) each."""
    raw = b"".join(send_events(h11.Connection(h11.CLIENT), request) for request in requests)
    sock.sendall(raw)
    reader = h11.Connection(h11.CLIENT)
    found: list[tuple[int, bytes, bool]] = []
    for request in requests:
        send_events(reader, request)  # what h11 needs to expect the matching answer
        while True:
            event = reader.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(65536)
                assert data, f"connection closed after {len(found)} of {len(requests)} answers"
                reader.receive_data(data)
            elif isinstance(event, h11.Response):
                headers = dict(event.headers)
                close = b"close" in headers.get(b"connection", b"")
                found.append((event.status_code, headers.get(b"x-request-id", b""), close))
            elif isinstance(event, h11.EndOfMessage):
                break
        reader.start_next_cycle()
    return found


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "cleartext"])
@pytest.mark.parametrize(
    "requests", [(GET, GET, GET), (UNAUTHORIZED, POST, GET), (POST, POST, POST)]
)
def test_requests_pipelined_in_one_write_are_all_answered_in_order(
    server: Server, tls: bool, requests: tuple[Request, Request, Request]
) -> None:
    with connect(server, tls=tls) as sock:
        got = exchange(sock, list(requests))
    statuses = [status for status, _, _ in got]
    if not tls:  # the plain port sends everything to https
        assert statuses == [308, 308, 308]
    else:
        expected = {GET: 200, UNAUTHORIZED: 401, POST: 200}
        assert statuses == [expected[r] for r in requests]
    assert len({request_id for _, request_id, _ in got}) == 3  # three answers, not one thrice
    assert not any(close for _, _, close in got)  # the connection stays usable
