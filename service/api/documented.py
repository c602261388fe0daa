"""What a route states about itself for the OpenAPI document, beyond what can be derived.

Security, the common problem+json errors and the RateLimit headers follow from a route's
auth decision, rate limits, body and parameters (see `openapi.py`). These decorators add
the rest: a route-specific problem (409, 412), an OAuth error, a body-less answer (204,
304), and the standard headers a route reads or sends, named from one shared list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
DOCS_ATTRIBUTE = "_portcullis_openapi"

# Response headers (components/headers) and request headers (components/parameters).
RESPONSE_HEADERS: dict[str, str] = {
    "ETag": "The note's version (strong entity tag); send it back in `If-Match`.",
    "Location": "The URL of the created resource.",
    "Idempotent-Replayed": "`true` when this is the stored answer to a retried request.",
    "Retry-After": "Seconds to wait before retrying.",
    "RateLimit": 'The policy closest to exhaustion: `"name";r=<remaining>;t=<reset seconds>`.',
    "RateLimit-Policy": 'Every policy that applies: `"name";q=<quota>;w=<window seconds>`.',
    "WWW-Authenticate": 'RFC 6750 challenge, e.g. `Bearer realm="portcullis", '
    'error="invalid_token"`.',
}
REQUEST_HEADERS: dict[str, dict[str, Any]] = {
    "If-Match": {
        "description": "Apply only if the note still has this ETag (else 412); `*` for any.",
        "schema": {"type": "string"},
    },
    "If-None-Match": {
        "description": "304 when the note still has one of these ETags.",
        "schema": {"type": "string"},
    },
    "Idempotency-Key": {
        "description": "Retries with the same key and body get the first answer again "
        "(kept 24 h per caller); the same key with another body gets 422.",
        "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
    },
}
OAUTH_ERRORS = {
    400: "An RFC 6749 error: `invalid_request`, `invalid_grant`, `unsupported_grant_type`, "
    "`invalid_scope`...",
    401: "`invalid_client`: the client authentication failed.",
}


@dataclass
class RouteDocs:
    problems: dict[int, str] = field(default_factory=dict)
    oauth_errors: dict[int, str] = field(default_factory=dict)
    # status -> (description, response header names)
    responses: dict[int, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    request_headers: tuple[str, ...] = ()


def route_docs(func: Callable[..., Any]) -> RouteDocs:
    """The route's declarations (functools.wraps carries them to the outer wrappers)."""
    docs: RouteDocs | None = getattr(func, DOCS_ATTRIBUTE, None)
    if docs is None:
        docs = RouteDocs()
        setattr(func, DOCS_ATTRIBUTE, docs)
    return docs


def _known(names: Iterable[str], table: dict[str, Any]) -> tuple[str, ...]:
    names = tuple(names)
    unknown = [name for name in names if name not in table]
    if unknown:
        raise KeyError(f"undocumented header(s): {', '.join(unknown)}")
    return names


def problems(status: int, description: str) -> Callable[[F], F]:
    """A problem+json answer the route gives beyond the derived ones (409, 412...)."""

    def decorator(func: F) -> F:
        route_docs(func).problems[status] = description
        return func

    return decorator


def oauth_errors(*statuses: int) -> Callable[[F], F]:
    """RFC 6749 §5.2 error answers (the OAuth endpoints only)."""

    def decorator(func: F) -> F:
        for status in statuses:
            route_docs(func).oauth_errors[status] = OAUTH_ERRORS[status]
        return func

    return decorator


def responds(
    status: int, description: str = "", *, headers: Iterable[str] = ()
) -> Callable[[F], F]:
    """Describe an answer: the headers it sends, or that it has no body (204, 304)."""
    names = _known(headers, RESPONSE_HEADERS)

    def decorator(func: F) -> F:
        route_docs(func).responses[status] = (description, names)
        return func

    return decorator


def request_headers(*names: str) -> Callable[[F], F]:
    """Request headers the route reads (If-Match, If-None-Match, Idempotency-Key)."""
    known = _known(names, REQUEST_HEADERS)

    def decorator(func: F) -> F:
        route_docs(func).request_headers = known
        return func

    return decorator
