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
from .dpop_gate import DPoPGate, challenge, proof_request
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
    challenge: str | None = None  # the WWW-Authenticate value, when not Bearer's default


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
    return scheme.lower() in ("bearer", "basic", "dpop") and any(c in credentials for c in ", \t")


async def authenticate(
    header: str | None,
    tokens: TokenService,
    denylist: Denylist,
    external: ExternalIssuers | None = None,
    dpop: DPoPGate | None = None,
    request: Any = None,
) -> Authentication:
    """The principal, the reason a bad token is refused, or ANONYMOUS without one.
    No I/O, except one bounded key refresh for an external token with an unknown `kid`,
    and for a DPoP-bound token the replay cache's write (`dpop_binding`)."""
    if not header:
        return ANONYMOUS
    scheme, _, credentials = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("bearer", "dpop"):
        return ANONYMOUS  # another scheme is not an access token at all
    credentials = credentials.strip()
    if not credentials:
        return _refused("malformed", scheme)
    try:
        issuer = external.get(unverified_issuer(credentials)) if external else None
        if issuer is not None:
            principal = await external_principal(issuer, credentials)
        else:
            principal = tokens.verify(credentials)
    except TokenRejected as exc:
        return _refused(exc.reason, scheme)
    if denylist.is_revoked(principal):
        return _refused("revoked", scheme)
    if denylist.is_disabled(principal):
        return _refused("inactive_principal", scheme)
    if scheme == "dpop" or principal.jkt is not None:
        return await dpop_binding(principal, scheme, credentials, dpop, request)
    return Authentication(principal=principal)


def _refused(reason: str, scheme: str) -> Authentication:
    """A refused token; with the DPoP scheme, its challenge is DPoP's (RFC 9449 §7.1)."""
    if scheme == "dpop":
        return Authentication(failure=reason, challenge=challenge("invalid_token"))
    return Authentication(failure=reason)


async def dpop_binding(
    principal: Principal, scheme: str, token: str, dpop: DPoPGate | None, request: Any
) -> Authentication:
    """RFC 9449 §7: a bound token only as `DPoP`, with a fresh proof by its key for this
    request and this token; the `DPoP` scheme only with a bound token. Checked on every
    request, whether the token's signature was verified now or remembered."""
    if principal.jkt is None:
        return _refused("not_dpop_bound", scheme)
    if scheme != "dpop":
        bearer = 'Bearer realm="portcullis", error="invalid_token", ' + challenge()
        return Authentication(failure="dpop_bound", challenge=bearer)
    if dpop is None or request is None:  # pragma: no cover - the request hook gives both
        return _refused("dpop_proof", scheme)
    refused = await dpop.resource_request(proof_request(request), token, principal.jkt)
    if refused is not None:
        return Authentication(failure="dpop_proof", challenge=refused)
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
        jkt=claims.jkt,
    )


def current_principal() -> Principal:
    principal = authentication().principal
    if principal is None:  # pragma: no cover - guarded by require_* decorators
        raise Unauthorized()
    return principal


def _check(scope: str | None) -> Principal:
    result = authentication()
    if result.failure is not None:
        error = Unauthorized(
            "The bearer token is invalid, expired or revoked.", error="invalid_token"
        )
        if result.challenge is not None:
            error.detail = "The access token or its DPoP proof is not acceptable."
            error.headers["WWW-Authenticate"] = result.challenge
        raise error
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
