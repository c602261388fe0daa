"""Request targets: odd ones refused with 400; plain http redirected (308) to the issuer."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..problem import send_problem
from .asgi import Scope, Send

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


REDIRECT = "<redirect>"  # the route of the answers on the plain-http port


async def answer(scope: Scope, send: Send, origin: bytes) -> str | None:
    """For a request `plain_request_target` and `scope["scheme"]` did not let through:
    400 for an odd request target (on every port); on the plain-http port 308 to the
    issuer's `origin` plus the path and query (never the request's Host). The route
    of the answer: `REDIRECT`, or None for the 400."""
    if not plain_request_target(scope):
        await send_problem(send, 400, detail="Invalid request target.")
        return None
    location = origin + _raw_path(scope)
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
    return REDIRECT


def https_origin(issuer: str) -> bytes:
    return f"https://{urlsplit(issuer).netloc}".encode()
