"""Per request: request id, security headers, access log line and request metrics."""

from __future__ import annotations

import re
import time
import uuid

from ..api.problems import send_problem
from ..context import RequestInfo, current_request
from ..logging import get_logger, write_access_line
from ..metrics import Metrics
from ..security.headers import security_headers
from .asgi import PROBES, ASGIApp, Message, Receive, Scope, Send, header

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
access_log = get_logger("portcullis.access")
_REPLACED = frozenset({b"server", b"x-request-id"})  # never passed on from below
_SECURITY = {https: security_headers(https) for https in (False, True)}  # built once
_SECURITY_NAMES = frozenset(name for name, _ in _SECURITY[True])


def response_headers(
    given: list[tuple[bytes, bytes]], *, https: bool, request_id: bytes
) -> list[tuple[bytes, bytes]]:
    """The answer's headers in one pass: the app's own (without Server or a request id),
    then the security headers the app did not set (the docs page sets its CSP), then
    X-Request-ID."""
    headers: list[tuple[bytes, bytes]] = []
    present: set[bytes] | None = None
    for name, value in given:
        lowered = name.lower()
        if lowered in _REPLACED:
            continue
        if lowered in _SECURITY_NAMES:
            present = {lowered} if present is None else present | {lowered}
        headers.append((name, value))
    if present is None:
        headers.extend(_SECURITY[https])
    else:
        headers.extend(item for item in _SECURITY[https] if item[0] not in present)
    headers.append((b"x-request-id", request_id))
    return headers


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
        given = header(scope, b"x-request-id")
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
                message = dict(message)
                message["headers"] = response_headers(
                    message.get("headers", ()), https=https, request_id=request_id.encode()
                )
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
            route = info.route or ("<probe>" if scope["path"] in PROBES else "<unmatched>")
            self.metrics.observe_request(info.method, route, info.status, duration)
            write_access_line(info, seconds=duration)
            current_request.reset(token)
