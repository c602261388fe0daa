"""Bearer authentication: the request's typed `Authentication`, and per-route access
decisions (deny by default).

`authenticate` turns the `Authorization` header into an `Authentication` (a Principal,
a failure reason, or neither) without any I/O; `ambiguous_credentials` spots a request
carrying more than one. The request hook stores the result once (`set_authentication`);
everything else reads it through `authentication()` / `current_principal()`. Every
route declares its decision with `public`, `require_token` or `require_scope`; the
policy test fails for a route without one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from quart import g

from ..errors import InsufficientScope, Unauthorized
from .denylist import Denylist
from .issuer_keys import ExternalIssuers, IssuerKeys
from .issuers import Rejected, verify_external
from .tokens import (
    MAX_TOKEN_BYTES,
    Principal,
    TokenRejected,
    TokenService,
    token_header,
    unverified_issuer,
)

AUTH_ATTRIBUTE = "_portcullis_auth"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Authentication:
    """The request's authentication: a principal, or why its bearer token was refused
    (`failure`), or neither (no bearer token at all)."""

    principal: Principal | None = None
    failure: str | None = None


ANONYMOUS = Authentication()


def set_authentication(result: Authentication) -> None:
    """Store the request's authentication (once, in the request hook)."""
    g.authentication = result


def authentication() -> Authentication:
    """The request's authentication; ANONYMOUS before (or without) the hook."""
    result: Authentication = g.get("authentication", ANONYMOUS)
    return result


def ambiguous_credentials(fields: list[str]) -> bool:
    """True when the request carries more than one credential: several `Authorization`
    fields, or one Bearer or Basic field holding a list (a token68 has no comma and no
    space). Which one to believe is a guess, and proxies and the service may guess
    differently, so such a request is refused (RFC 6750 §3.1 `invalid_request`)."""
    if len(fields) > 1:
        return True
    if not fields:
        return False
    scheme, _, credentials = fields[0].strip().partition(" ")
    credentials = credentials.strip()
    return scheme.lower() in ("bearer", "basic") and any(c in credentials for c in ", \t")


async def authenticate(
    header: str | None,
    tokens: TokenService,
    denylist: Denylist,
    external: ExternalIssuers | None = None,
) -> Authentication:
    """The principal, the reason a bad token is refused, or ANONYMOUS without one.
    No I/O, except one bounded key refresh for an external token with an unknown `kid`."""
    if not header:
        return ANONYMOUS
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ANONYMOUS  # another scheme is not a bearer token at all
    credentials = credentials.strip()
    if not credentials:
        return Authentication(failure="malformed")
    try:
        issuer = external.get(unverified_issuer(credentials)) if external else None
        if issuer is not None:
            principal = await external_principal(issuer, credentials)
        else:
            principal = tokens.verify(credentials)
    except TokenRejected as exc:
        return Authentication(failure=exc.reason)
    if denylist.is_revoked(principal):
        return Authentication(failure="revoked")
    if denylist.is_disabled(principal):
        return Authentication(failure="inactive_principal")
    return Authentication(principal=principal)


async def external_principal(issuer: IssuerKeys, token: str) -> Principal:
    """Verify a token of a configured external issuer; raise TokenRejected."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected("oversized")
    try:
        claims = await verify_external(issuer, token, token_header(token))
    except Rejected as exc:
        raise TokenRejected(exc.reason) from None
    return Principal(
        sub=claims.subject,
        client_id=claims.client_id,
        scopes=claims.scopes,
        jti=claims.jti,
        exp=claims.exp,
        sid=None,
        issuer=claims.issuer,
        role=claims.role,
        external_sub=claims.sub,
    )


def current_principal() -> Principal:
    principal = authentication().principal
    if principal is None:  # pragma: no cover - guarded by require_* decorators
        raise Unauthorized()
    return principal


def _check(scope: str | None) -> Principal:
    result = authentication()
    if result.failure is not None:
        raise Unauthorized(
            "The bearer token is invalid, expired or revoked.", error="invalid_token"
        )
    principal = result.principal
    if principal is None:
        raise Unauthorized()
    if scope is not None and scope not in principal.scopes:
        raise InsufficientScope(scope)
    return principal


def require_scope(scope: str | None) -> Callable[[F], F]:
    """Allow only a valid token carrying `scope` (any valid token when None)."""

    def decorator(func: F) -> F:
        @wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            _check(scope)
            return await func(*args, **kwargs)

        setattr(wrapper, AUTH_ATTRIBUTE, f"scope:{scope}" if scope else "token")
        return wrapper  # type: ignore[return-value]

    return decorator


def require_token(func: F) -> F:
    return require_scope(None)(func)


def public(func: F) -> F:
    """Explicitly open to anyone."""
    setattr(func, AUTH_ATTRIBUTE, "public")
    return func
