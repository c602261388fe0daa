"""Per request: request id, security headers, access log line and request metrics."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterable

from ..api.problems import send_problem
from ..context import RequestInfo
from ..logging import get_logger, write_access_line
from ..metrics import Metrics
from ..security.headers import security_headers
from ..security.ratelimit import Decision, header_fields
from .asgi import PROBES, Scope, Send

_ids = random.Random(os.urandom(32))  # noqa: S311 - request ids are not secrets
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))  # no shared stream
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
access_log = get_logger("portcullis.access")
_REPLACED = frozenset({b"server", b"x-request-id"})  # never passed on from below
_SECURITY = {https: security_headers(https) for https in (False, True)}  # built once
_SECURITY_NAMES = frozenset(name for name, _ in _SECURITY[True])
# Answers to API calls and to anything carrying credentials are never cached.
_NO_STORE = (b"cache-control", b"no-store")
_NO_CACHE = (b"pragma", b"no-cache")
_RATELIMIT_NAMES = frozenset({b"ratelimit", b"ratelimit-policy"})


def response_headers(
    given: Iterable[tuple[bytes, bytes]],
    *,
    https: bool,
    request_id: bytes,
    no_store: bool,
    ratelimit: Decision | None,
) -> list[tuple[bytes, bytes]]:
    """The answer's headers in one pass, as bytes: the app's own (without Server or a
    request id; with `no_store`, its Cache-Control replaced by `no-store` and Pragma
    `no-cache` unless it set one; with a rate-limit decision, its RateLimit fields),
    then the security headers the app did not set (the docs page sets its CSP), then
    X-Request-ID."""
    headers: list[tuple[bytes, bytes]] = []
    present: set[bytes] | None = None
    pragma = False
    limited = ratelimit is not None and bool(ratelimit.states)
    for name, value in given:
        lowered = name.lower()
        if lowered in _REPLACED:
            continue
        if lowered in _SECURITY_NAMES:
            present = {lowered} if present is None else present | {lowered}
        elif no_store and lowered == b"cache-control":
            continue
        elif lowered == b"pragma":
            pragma = True
        elif limited and lowered in _RATELIMIT_NAMES:
            continue
        headers.append((name, value))
    if limited:
        headers.extend(header_fields(ratelimit))  # type: ignore[arg-type]
    if no_store:
        headers.append(_NO_STORE)
        if not pragma:
            headers.append(_NO_CACHE)
    if present is None:
        headers.extend(_SECURITY[https])
    else:
        headers.extend(item for item in _SECURITY[https] if item[0] not in present)
    headers.append((b"x-request-id", request_id))
    return headers


def request_facts(scope: Scope) -> tuple[str, bool]:
    """The request id (the caller's X-Request-ID when it is 1..64 of [A-Za-z0-9._-],
    else a new one) and whether the request carries an Authorization header."""
    given: str | None = None
    credentials = False
    for key, value in scope.get("headers", ()):
        lowered = key.lower()
        if lowered == b"x-request-id":
            if given is None:
                given = bytes(value).decode("latin-1")
        elif lowered == b"authorization":
            credentials = True
    if given and _REQUEST_ID.fullmatch(given):
        return given, credentials
    # 128 random bits as 32 hex digits, the form uuid4().hex had. A correlation id, not
    # a secret: drawn from a generator seeded once per process from the OS (no system
    # call per request).
    return f"{_ids.getrandbits(128):032x}", credentials


def finish(info: RequestInfo, metrics: Metrics, path: str, duration: float) -> None:
    """The request metrics and the access line, once the answer is sent (or not)."""
    metrics.request_finished()
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
