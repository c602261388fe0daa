"""Request heads and bodies: size caps, forbidden header bytes, CL+TE, and the early answer."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from dataclasses import dataclass

from ..problem import send_problem
from .asgi import ASGIApp, Message, Receive, Scope, Send

MAX_HEAD_BYTES = 16 * 1024


class _BodyWatch:
    """Follows the request body as the app reads it, so that a response started before
    the body is all in can wait for the rest instead of breaking the connection."""

    __slots__ = ("done", "limit", "receive", "received", "settled")

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.received = 0
        self.done = False
        self.settled: asyncio.Event | None = None  # created only when a response waits

    async def watched_receive(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.done = not message.get("more_body", False)
        else:  # http.disconnect
            self.done = True
        if self.settled is not None and (self.done or self.received > self.limit):
            self.settled.set()
        return message

    async def wait_for_rest(self, seconds: float) -> None:
        """Give the app (Quart reads the body in a task of its own, discarding what is
        over its MAX_CONTENT_LENGTH) up to `seconds` to read the rest of a body no larger
        than the limit. If it is not all in by then, Hypercorn (with service.server.patches)
        closes the HTTP/1.1 connection with `Connection: close`, or resets only this
        HTTP/2 stream."""
        if self.done or self.received > self.limit:
            return
        self.settled = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.settled.wait(), timeout=seconds)


DRAIN_SECONDS = 2.0  # an early answer waits this long for the rest of a bounded body


class Head(enum.Enum):
    NO_BODY = "no_body"  # nothing to follow
    BODY = "body"  # a body follows: serve it `watched`


@dataclass(frozen=True, slots=True)
class Refusal:
    """A problem answer for a request refused before the app saw it."""

    status: int
    detail: str
    headers: list[tuple[bytes, bytes]] | None = None

    async def send(self, send: Send) -> None:
        await send_problem(send, self.status, detail=self.detail, headers=self.headers)


_CLOSE = [(b"connection", b"close")]


def check_head(scope: Scope, max_bytes: int) -> Head | Refusal:
    """Refuse a declared Content-Length over the limit before reading any of it
    (Quart's MAX_CONTENT_LENGTH stops chunked bodies while they stream in), header
    values holding CR, LF or NUL (HTTP servers refuse them; ASGI callers may not), a
    head over 16 KiB, and Content-Length with Transfer-Encoding (RFC 9112 §6.1: 400,
    then close). Synchronous: a request that passes costs no await."""
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    length: str | None = None
    chunked = False
    for name, value in scope.get("headers", ()):
        size += len(name) + len(value) + 4
        if b"\r" in value or b"\n" in value or b"\x00" in value:
            return Refusal(400, "Invalid header value.")
        lowered = name.lower()
        if lowered == b"content-length":
            length = bytes(value).decode("latin-1")
        elif lowered == b"transfer-encoding":
            chunked = True
    if size > MAX_HEAD_BYTES:
        return Refusal(431, "The request head is too large.")
    if length is not None and chunked:
        return Refusal(
            400, "Content-Length and Transfer-Encoding together are not allowed.", _CLOSE
        )
    if length is not None:
        if not length.isdigit():
            return Refusal(400, "Invalid Content-Length.")
        if int(length) > max_bytes:
            return Refusal(413, f"The request body exceeds {max_bytes} bytes.", _CLOSE)
        if length.strip("0") == "":  # Content-Length: 0, nothing to wait for
            return Head.NO_BODY
    elif not chunked and scope.get("http_version", "1.1").startswith("1"):
        return Head.NO_BODY  # HTTP/1 without framing: no body
    return Head.BODY


async def watched(app: ASGIApp, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    """Serve a request with a body so that an answer started before the body is all in
    (401, 403, 429...) first waits up to `DRAIN_SECONDS` for the rest of a body within
    the limit, and the connection stays usable; a request whose body was already read
    pays one flag check."""
    body = _BodyWatch(receive, limit)

    async def send_after_body(message: Message) -> None:
        if message["type"] == "http.response.start" and not body.done:
            await body.wait_for_rest(DRAIN_SECONDS)
        await send(message)

    await app(scope, body.watched_receive, send_after_body)
