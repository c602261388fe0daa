"""Small single-purpose ASGI middlewares (each: `__init__` + `async __call__`).

Order, outermost first (see `service.app.create_app`):
TrustedProxy → RequestContext → HTTPSRedirect → InflightLimit → BodyLimit → Quart.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from .api.problems import send_problem
from .context import RequestInfo, current_request, request_info
from .logging import get_logger
from .metrics import Metrics
from .security.headers import security_headers
from .security.proxies import ProxyResolver

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_HEAD_BYTES = 16 * 1024
_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
access_log = get_logger("portcullis.access")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class TrustedProxyMiddleware:
    """Replace the client address and scheme with those a trusted proxy reports, from
    the one header family `PORTCULLIS_FORWARDED_HEADER` names; else ignore every
    forwarding header (X-Forwarded-*, X-Real-IP, Forwarded)."""

    def __init__(self, app: ASGIApp, resolver: ProxyResolver) -> None:
        self.app = app
        self.resolver = resolver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client") or ("", 0)
            socket_tls = scope.get("scheme", "http") in ("https", "wss")
            client_ip, scheme = self.resolver.resolve(
                peer[0], scope.get("headers", ()), "https" if socket_tls else "http"
            )
            scope = dict(scope)
            scope["client"] = (client_ip, peer[1])
            if scope["type"] == "websocket":
                scheme = "wss" if scheme == "https" else "ws"
            scope["scheme"] = scheme
        await self.app(scope, receive, send)


# Origin-form request targets only (RFC 9112 3.2.1, RFC 3986 path-absolute): no
# absolute or authority form, no empty or dot segments, only URI characters in the
# path. The query may hold what browsers leave unencoded (`|`, `[`, `^` ...), but
# no fragment.
_PCHAR = rb"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
_PATH = re.compile(rb"(?:/" + _PCHAR + rb"+)+/?|/")
_QUERY = re.compile(rb"[!-\x22$-~]*")
_DOT_SEGMENT = re.compile(r"(?:^|/)\.{1,2}(?:/|$)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def _raw_path(scope: Scope) -> bytes:
    raw = scope.get("raw_path")
    return bytes(raw) if raw else str(scope.get("path", "")).encode()


def plain_request_target(scope: Scope) -> bool:
    """True when the request target is a plain origin-form path (and query) that names
    the same resource before and after percent-decoding."""
    raw = _raw_path(scope)
    if not _PATH.fullmatch(raw) or not _QUERY.fullmatch(bytes(scope.get("query_string", b""))):
        return False
    if b"." in raw and _DOT_SEGMENT.search(raw.decode("ascii")):
        return False
    if b"%" in raw:  # %2F, %2E, %00 ... decode into what the router sees
        path = str(scope.get("path", ""))
        return "//" not in path and not _DOT_SEGMENT.search(path) and not _CONTROL.search(path)
    return True


class HTTPSRedirectMiddleware:
    """Refuse odd request targets with 400 on every port; on the plain-http port answer
    every other request with 308 to the issuer's origin plus the path and query (never
    the request's Host)."""

    def __init__(self, app: ASGIApp, issuer: str) -> None:
        self.app = app
        parts = urlsplit(issuer)
        self.origin = f"https://{parts.netloc}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not plain_request_target(scope):
            await send_problem(send, 400, detail="Invalid request target.")
            return
        if scope.get("scheme") == "http":
            info = request_info()
            if info is not None:
                info.route = "<redirect>"
            location = self.origin.encode() + _raw_path(scope)
            if scope.get("query_string"):
                location += b"?" + bytes(scope["query_string"])
            await send(
                {
                    "type": "http.response.start",
                    "status": 308,
                    "headers": [(b"location", location), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


class RequestContextMiddleware:
    """Request id, security headers, access log line and request metrics, for every
    response including those made by the middlewares below it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        info = RequestInfo(
            request_id=request_id,
            client_ip=(scope.get("client") or ("unknown", 0))[0],
            method=scope["method"],
            path=scope["path"],
        )
        token = current_request.set(info)
        https = scope.get("scheme") == "https"
        started = time.perf_counter()
        self.metrics.in_flight.inc()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                info.status = message["status"]
                headers = [
                    (k, v)
                    for k, v in message.get("headers", ())
                    if k.lower() not in (b"server", b"x-request-id")
                ]
                present = {k.lower() for k, _ in headers}
                for name, value in security_headers(https):
                    if name not in present:
                        headers.append((name, value))
                headers.append((b"x-request-id", request_id.encode()))
                message = dict(message)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:  # the app's own handlers answer first; this is the last net
            access_log.exception("unhandled exception in ASGI app")
            if info.status == 0:
                await send_problem(send_wrapper, 500, detail="An unexpected error occurred.")
            else:
                raise
        finally:
            duration = time.perf_counter() - started
            self.metrics.in_flight.dec()
            if info.status == 0:
                info.status = 499  # the client went away before any answer
            route = info.route or ("<probe>" if scope["path"] in _PROBES else "<unmatched>")
            self.metrics.observe_request(info.method, route, info.status, duration)
            access_log.info(
                "http.request",
                method=info.method,
                path=info.path,
                route=info.route,
                status=info.status,
                duration_ms=round(duration * 1000, 3),
                client_ip=info.client_ip,
                principal=info.principal,
            )
            current_request.reset(token)


class InflightLimitMiddleware:
    """At most `limit` requests in the app; a request waits `wait` seconds for a slot,
    then gets 503. Probes bypass the cap so they are never starved."""

    def __init__(self, app: ASGIApp, limit: int, wait: float) -> None:
        self.app = app
        self.limit = limit
        self.wait = wait
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _PROBES:
            await self.app(scope, receive, send)
            return
        if self._slots is None:  # created lazily inside the serving event loop
            self._slots = asyncio.Semaphore(self.limit)
        try:
            if self._slots.locked():  # only a full house pays for a timed wait
                await asyncio.wait_for(self._slots.acquire(), timeout=self.wait)
            else:
                await self._slots.acquire()
        except TimeoutError:
            await send_problem(
                send,
                503,
                detail="The server is overloaded; retry shortly.",
                headers=[(b"retry-after", b"1")],
            )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()


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
        than the limit. If it is not all in by then, Hypercorn (with service.server_fixes)
        closes the HTTP/1.1 connection with `Connection: close`, or resets only this
        HTTP/2 stream."""
        if self.done or self.received > self.limit:
            return
        self.settled = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.settled.wait(), timeout=seconds)


class BodyLimitMiddleware:
    """Refuse a declared Content-Length over the limit before reading any of it
    (Quart's MAX_CONTENT_LENGTH stops chunked bodies while they stream in), header
    values holding CR, LF or NUL (HTTP servers refuse them; ASGI callers may not), and
    Content-Length with Transfer-Encoding (RFC 9112 §6.1: 400, then close).

    An answer started before the body is all in (401, 403, 429...) first waits up to
    `DRAIN_SECONDS` for the rest of a body within the limit, so the connection stays
    usable; a request whose body was already read pays one flag check."""

    DRAIN_SECONDS = 2.0

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        length: str | None = None
        chunked = False
        for name, value in scope.get("headers", ()):
            size += len(name) + len(value) + 4
            if b"\r" in value or b"\n" in value or b"\x00" in value:
                await send_problem(send, 400, detail="Invalid header value.")
                return
            lowered = name.lower()
            if lowered == b"content-length":
                length = bytes(value).decode("latin-1")
            elif lowered == b"transfer-encoding":
                chunked = True
        if size > MAX_HEAD_BYTES:
            await send_problem(send, 431, detail="The request head is too large.")
            return
        if length is not None and chunked:
            await send_problem(
                send,
                400,
                detail="Content-Length and Transfer-Encoding together are not allowed.",
                headers=[(b"connection", b"close")],
            )
            return
        if length is not None:
            if not length.isdigit():
                await send_problem(send, 400, detail="Invalid Content-Length.")
                return
            if int(length) > self.max_bytes:
                await send_problem(
                    send,
                    413,
                    detail=f"The request body exceeds {self.max_bytes} bytes.",
                    headers=[(b"connection", b"close")],
                )
                return
            if length.strip("0") == "":  # Content-Length: 0, nothing to wait for
                await self.app(scope, receive, send)
                return
        elif not chunked and scope.get("http_version", "1.1").startswith("1"):
            await self.app(scope, receive, send)  # HTTP/1 without framing: no body
            return
        await self._watched(scope, _BodyWatch(receive, self.max_bytes), send)

    async def _watched(self, scope: Scope, body: _BodyWatch, send: Send) -> None:
        async def send_after_body(message: Message) -> None:
            if message["type"] == "http.response.start" and not body.done:
                await body.wait_for_rest(self.DRAIN_SECONDS)
            await send(message)

        await self.app(scope, body.watched_receive, send_after_body)
