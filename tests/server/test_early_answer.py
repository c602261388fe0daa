"""Answers sent before the request body is all in, and ambiguous body framing, against
the real server (Hypercorn with hypercorn.toml and service/server/patches, over TLS)."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest

from tests.support.server import Server, run_server

pytestmark = pytest.mark.server

NOTE = b'{"title": "' + b"n" * 1500 + b'"}'
HEAD = (
    b"POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer expired.token.x\r\n"
    b"Content-Type: application/json\r\nContent-Length: " + str(len(NOTE)).encode() + b"\r\n\r\n"
)
GET_HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("early")) as srv:
        yield srv
        time.sleep(0.3)
        text = srv.log.read_text()
        # no traceback, no KeyError, no line that is not JSON in the server's output
        for line in text.splitlines():
            if line.strip():
                json.loads(line)
        assert "Traceback" not in text and "KeyError" not in text


def _tls(server: Server, alpn: str = "http/1.1") -> ssl.SSLSocket:
    ctx = server.ssl_context()
    ctx.set_alpn_protocols([alpn])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost")


class Reader:
    """Minimal HTTP/1.1 response reader on a raw socket (Content-Length bodies)."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.buffer = b""
        self.head = b""  # the last response's head, as sent

    def _more(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except (ssl.SSLError, OSError):
            return False
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> tuple[int, dict[str, str], bytes] | None:
        while b"\r\n\r\n" not in self.buffer:
            if not self._more():
                return None
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.head = head
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not self._more():
                return None
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, body

    def closed(self) -> bool:
        """True when the server closes the connection without sending anything more."""
        return not self.buffer and not self._more()


def test_http1_early_401_then_rest_of_body_keeps_the_connection(server: Server) -> None:
    with _tls(server) as sock:
        reader = Reader(sock)
        sock.sendall(HEAD + NOTE[:700])
        time.sleep(0.5)  # the app has decided on 401 before the rest of the body arrives
        sock.sendall(NOTE[700:])
        first = reader.response()
        assert first is not None and first[0] == 401
        assert "connection" not in first[1]  # the rest of the body was read: keep-alive
        sock.sendall(GET_HEALTHZ)  # the keep-alive client's next request
        second = reader.response()
        assert second is not None, "server disconnected"
        assert second[0] == 200 and json.loads(second[2]) == {"status": "ok"}


def test_http1_early_answer_to_an_unfinished_body_says_connection_close(server: Server) -> None:
    with _tls(server) as sock:
        reader = Reader(sock)
        sock.sendall(HEAD + NOTE[:700])  # and the rest never comes
        first = reader.response()
        assert first is not None and first[0] == 401
        assert first[1]["connection"].lower() == "close"
        assert reader.closed()


def test_http1_keep_alive_request_limit_says_connection_close_once(server: Server) -> None:
    # keep_alive_max_requests = 1000 (hypercorn.toml): the 1000th answer on a connection
    # closes it and says so, with one Connection field (the h11 patch builds the final
    # response's head itself).
    with _tls(server) as sock:
        reader = Reader(sock)
        for _ in range(10):
            sock.sendall(GET_HEALTHZ * 100)
            for _ in range(100):
                answer = reader.response()
                assert answer is not None and answer[0] == 200
                if "connection" in answer[1]:
                    break
        assert answer is not None and answer[1]["connection"].lower() == "close"
        assert reader.head.lower().count(b"\r\nconnection:") == 1
        assert b"x-content-type-options: nosniff" in reader.head.lower()
        assert reader.closed()


def test_http1_chunked_body_over_the_limit_says_connection_close(server: Server) -> None:
    chunk = b"x" * 8192
    with _tls(server) as sock:
        reader = Reader(sock)
        sock.sendall(
            b"POST /v1/auth/register HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + (b"2000\r\n" + chunk + b"\r\n")
            * 9  # 72 KiB, over the 64 KiB limit; no end
        )
        answer = reader.response()
        assert answer is not None and answer[0] == 413
        assert answer[1]["connection"].lower() == "close"


def test_content_length_with_transfer_encoding_is_refused_and_closed(server: Server) -> None:
    body = json.dumps({"username": "smuggler", "password": "Tr0ub4dor&3-horse"}).encode()
    with _tls(server) as sock:
        reader = Reader(sock)
        sock.sendall(
            b"POST /v1/auth/register HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + f"{len(body):x}\r\n".encode()
            + body
            + b"\r\n0\r\n\r\n"
            + GET_HEALTHZ  # a second request on the same connection: never answered
        )
        answer = reader.response()
        assert answer is not None and answer[0] == 400
        assert answer[1]["connection"].lower() == "close"
        assert answer[1]["content-type"] == "application/problem+json"
        assert reader.closed()


class H2Client:
    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()
        self.status: dict[int, int] = {}
        self.ended: set[int] = set()
        self.resets: dict[int, int] = {}
        self.terminated = False

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def request(self, method: str, path: str, *, body: bytes | None = None) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (":method", method),
            (":path", path),
            (":scheme", "https"),
            (":authority", "localhost"),
        ]
        if body is not None:
            headers += [
                ("authorization", "Bearer expired.token.x"),
                ("content-type", "application/json"),
                ("content-length", str(len(body))),
            ]
        self.conn.send_headers(stream_id, headers, end_stream=body is None)
        self.flush()
        return stream_id

    def pump_until(self, done: Any, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while not done() and not self.terminated:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return
            except (ssl.SSLError, OSError):
                self.terminated = True
                return
            if not data:
                self.terminated = True
                return
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    self.status[event.stream_id] = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                elif isinstance(event, h2.events.StreamEnded):
                    self.ended.add(event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    self.resets[event.stream_id] = event.error_code
                elif isinstance(event, h2.events.ConnectionTerminated):
                    self.terminated = True
            self.flush()


def test_http2_early_401_with_body_still_arriving_leaves_other_streams_alone(
    server: Server,
) -> None:
    with _tls(server, "h2") as sock:
        client = H2Client(sock)
        upload = client.request("POST", "/v1/notes", body=NOTE)
        client.conn.send_data(upload, NOTE[:700])
        client.flush()
        other = client.request("GET", "/healthz")
        client.pump_until(lambda: other in client.ended)
        assert client.status.get(other) == 200
        time.sleep(0.3)  # the app has decided on 401 before the rest of the body arrives
        assert upload not in client.resets
        client.conn.send_data(upload, NOTE[700:], end_stream=True)
        client.flush()
        client.pump_until(lambda: upload in client.ended or upload in client.resets)
        assert client.status.get(upload) == 401
        assert upload not in client.resets  # the body was read: a normal end of stream
        last = client.request("GET", "/healthz")
        client.pump_until(lambda: last in client.ended)
        assert not client.terminated and client.status.get(last) == 200


def test_http2_early_401_to_an_unfinished_body_resets_only_that_stream(server: Server) -> None:
    with _tls(server, "h2") as sock:
        client = H2Client(sock)
        upload = client.request("POST", "/v1/notes", body=NOTE)
        client.conn.send_data(upload, NOTE[:700])  # and the rest is late
        client.flush()
        client.pump_until(lambda: upload in client.ended)
        assert client.status.get(upload) == 401
        client.pump_until(lambda: upload in client.resets, seconds=2)
        if upload not in client.resets:  # the late rest of the body, after the answer
            client.conn.send_data(upload, NOTE[700:], end_stream=True)
            client.flush()
        assert client.resets.get(upload) == h2.errors.ErrorCodes.NO_ERROR
        other = client.request("GET", "/healthz")
        client.pump_until(lambda: other in client.ended)
        assert not client.terminated and client.status.get(other) == 200


def test_http2_stream_reset_while_running_stops_its_handler(server: Server) -> None:
    """A stream the client resets after its request started is cancelled: logged as 499,
    its work (registering the user) never done."""
    body = json.dumps({"username": "resetter", "password": "Tr0ub4dor&3-horse"}).encode()
    with _tls(server, "h2") as sock:
        client = H2Client(sock)
        stream_id = client.conn.get_next_available_stream_id()
        client.conn.send_headers(
            stream_id,
            [
                (":method", "POST"),
                (":path", "/v1/auth/register"),
                (":scheme", "https"),
                (":authority", "localhost"),
                ("content-type", "application/json"),
                ("x-request-id", "reset-while-running"),
            ],
        )
        client.conn.send_data(stream_id, body[:10])  # the handler is waiting for the rest
        client.flush()
        time.sleep(0.5)
        client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        client.flush()
        time.sleep(0.5)
        retry = client.request("POST", "/v1/auth/register", body=body)
        client.conn.send_data(retry, body, end_stream=True)
        client.flush()
        client.pump_until(lambda: retry in client.ended)
        assert client.status.get(retry) == 201  # the reset request registered nothing
    time.sleep(0.3)
    records = [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]
    statuses = [r["status"] for r in records if r.get("request_id") == "reset-while-running"]
    assert statuses == [499]
