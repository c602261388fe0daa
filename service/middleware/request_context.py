"""Per request: request id, security headers, access log line and request metrics."""

from __future__ import annotations

import os
import re

from ..api.problems import send_problem
from ..context import RequestInfo
from ..logging import get_logger, write_access_line
from ..metrics import Metrics
from ..security.headers import security_headers
from .asgi import PROBES, Scope, Send, header

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


def request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when it is 1..64 of [A-Za-z0-9._-], else a new one."""
    given = header(scope, b"x-request-id")
    # 128 random bits as 32 hex digits, the form uuid4().hex had, without its object
    return given if given and _REQUEST_ID.fullmatch(given) else os.urandom(16).hex()


def finish(info: RequestInfo, metrics: Metrics, path: str, duration: float) -> None:
    """The request metrics and the access line, once the answer is sent (or not)."""
    metrics.in_flight.dec()
    if info.status == 0:
        info.status = 499  # the client went away before any answer
    route = info.route or ("<probe>" if path in PROBES else "<unmatched>")
    metrics.observe_request(info.method, route, info.status, duration)
    write_access_line(info, seconds=duration)


async def last_net(info: RequestInfo, send: Send) -> bool:
    """An exception no handler of the app answered: logged, and answered with a 500
    problem unless an answer had started (False: the caller re-raises, which cuts the
    connection)."""
    access_log.exception("unhandled exception in ASGI app")
    if info.status != 0:
        return False
    await send_problem(send, 500, detail="An unexpected error occurred.")
    return True
