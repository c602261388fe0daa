"""Per request: request id and trace context in; security headers, access line and
request metrics out."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterable

from ..context import Outcome, RequestFacts
from ..logging import access_line, get_logger
from ..metrics import Metrics
from ..problem import send_problem
from ..security.headers import security_headers
from ..security.ratelimit import Decision, header_fields
from .asgi import PROBES, Scope, Send

_ids = random.Random(os.urandom(32))  # noqa: S311 - request and trace ids are not secrets
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))  # no shared stream
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# W3C Trace Context `traceparent`: version-traceid-parentid-flags, lowercase hex. Version
# ff is invalid; version 00 has exactly these four fields, later versions may append more.
_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE, _ZERO_SPAN = b"0" * 32, b"0" * 16
log = get_logger("portcullis.access")
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


def _new_id() -> str:
    # 128 random bits as 32 hex digits (never all zero: W3C forbids that trace id). A
    # correlation id, not a secret: drawn from a generator seeded once per process from
    # the OS (no system call per request).
    return f"{_ids.getrandbits(128) or 1:032x}"


def read_facts(scope: Scope) -> tuple[RequestFacts, bool]:
    """The request's facts — its id (the caller's X-Request-ID when it is 1..64 of
    [A-Za-z0-9._-], else a new one), its trace (the caller's one valid `traceparent`,
    else a new trace id) and its client address — and whether it carries an
    Authorization header."""
    given: str | None = None
    traceparent: bytes | None = None
    parents = 0
    credentials = False
    for key, value in scope.get("headers", ()):
        lowered = key.lower()
        if lowered == b"x-request-id":
            if given is None:
                given = bytes(value).decode("latin-1")
        elif lowered == b"authorization":
            credentials = True
        elif lowered == b"traceparent":
            traceparent, parents = bytes(value), parents + 1
    rid = given if given and _REQUEST_ID.fullmatch(given) else _new_id()
    client_ip = scope["client"][0]
    if parents == 1:  # several traceparent fields are as good as none (W3C 3.2)
        found = _TRACEPARENT.fullmatch(traceparent)  # type: ignore[arg-type]
        if (
            found is not None
            and found[1] != b"ff"
            and (found[5] is None or found[1] != b"00")
            and found[2] != _ZERO_TRACE
            and found[3] != _ZERO_SPAN
        ):
            facts = RequestFacts(
                rid,
                found[2].decode(),
                client_ip,
                parent_span_id=found[3].decode(),
                sampled=bool(int(found[4], 16) & 1),
            )
            return facts, credentials
    return RequestFacts(rid, _new_id(), client_ip), credentials


def finish(
    facts: RequestFacts,
    outcome: Outcome,
    metrics: Metrics,
    *,
    method: str,
    path: str,
    status: int,
    route: str | None,
    duration: float,
) -> None:
    """The request metrics and the access line, once the answer is sent (or not: 499,
    the client went away first)."""
    metrics.request_finished()
    status = status or 499
    route = route or outcome.route or ("<probe>" if path in PROBES else "<unmatched>")
    metrics.observe_request(method, route, status, duration)
    access_line(
        method=method,
        path=path,
        route=route,
        status=status,
        seconds=duration,
        client_ip=facts.client_ip,
        principal=outcome.principal,
    )


async def last_net(started: bool, send: Send) -> bool:
    """An exception no handler of the app answered: logged, and answered with a 500
    problem unless an answer had started (False: the caller re-raises, which cuts the
    connection)."""
    log.exception("unhandled exception in ASGI app")
    if started:
        return False
    await send_problem(send, 500, detail="An unexpected error occurred.")
    return True
