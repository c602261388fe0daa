"""The real server, raw sockets: request targets no client library would send, and the
Host header never choosing where a redirect points."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support.server import Server, run_server

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("redirects")) as srv:
        yield srv


def exchange(server: Server, target: bytes, *, tls: bool, host: bytes = b"evil.com") -> bytes:
    """One HTTP/1.1 request with this exact request-target; the response head."""
    raw = socket.create_connection(("127.0.0.1", server.port if tls else server.http_port), 5)
    sock: socket.socket = (
        server.ssl_context().wrap_socket(raw, server_hostname="localhost") if tls else raw
    )
    with sock:
        sock.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


def status_and_location(head: bytes) -> tuple[int, bytes | None]:
    lines = head.split(b"\r\n")
    location = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"location":
            location = value.strip()
    return int(lines[0].split(b" ")[1]), location


@pytest.mark.parametrize(
    "target",
    [b"@evil.com/x", b"//evil.com/x", b"http://evil.com/x", b"evil.com", b"/a/../b", b"/x%00"],
)
def test_plain_http_port_refuses_odd_targets(server: Server, target: bytes) -> None:
    status, location = status_and_location(exchange(server, target, tls=False))
    assert (status, location) == (400, None), target


def test_plain_http_port_redirects_to_issuer_whatever_the_host(server: Server) -> None:
    status, location = status_and_location(exchange(server, b"/v1/notes?limit=2", tls=False))
    assert status == 308 and location == f"{server.url}/v1/notes?limit=2".encode()


@pytest.mark.parametrize("target", [b"/v1//users/me", b"/v1/%2Fusers/me", b"//v1/users/me"])
def test_tls_port_never_redirects_to_the_host_header(server: Server, target: bytes) -> None:
    status, location = status_and_location(exchange(server, target, tls=True))
    assert (status, location) == (400, None), target
