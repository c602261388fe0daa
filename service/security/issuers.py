"""Validation of the access tokens of external issuers (`PORTCULLIS_TRUSTED_ISSUERS`).

The unverified `iss` only chooses which configured issuer to try (`issuer_keys`). A key is
never taken from the token (`jku`, `x5u`, `jwk`, `x5c` are refused); `kid` only picks among
the keys fetched from that issuer. The principal of an external token is the issuer plus
its `sub`; scopes never exceed what the mapped role may hold.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from ..models.users import ROLE_SCOPES
from .issuer_keys import IssuerKeys

_FOREIGN_KEY_HEADERS = ("jku", "x5u", "jwk", "x5c")


def external_subject(issuer: str, sub: str) -> str:
    """The principal key of an external subject: never equal to a local id (UUIDs) or
    to the same `sub` from another issuer, and short enough for every owner column."""
    digest = hashlib.sha256(f"{issuer}\n{sub}".encode()).hexdigest()[:32]
    return f"ext:{digest}"


@dataclass(frozen=True)
class ExternalClaims:
    """What an external token says, once verified."""

    issuer: str
    subject: str  # the principal key: external_subject(issuer, sub)
    sub: str
    client_id: str
    scopes: frozenset[str]
    role: str
    jti: str
    exp: int
    jkt: str | None = None  # RFC 9449 `cnf.jkt`: the token needs a DPoP proof by that key


class Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


async def verify_external(keys: IssuerKeys, token: str, header: dict[str, Any]) -> ExternalClaims:
    """Verify a token whose unverified `iss` named this issuer; raise Rejected."""
    config = keys.config
    if any(name in header for name in _FOREIGN_KEY_HEADERS):
        raise Rejected("bad_header")
    alg = header.get("alg")
    if alg not in config.algorithms:
        raise Rejected("bad_algorithm")
    typ = header.get("typ")
    if config.require_typ is not None and (
        not isinstance(typ, str)
        or typ.lower().removeprefix("application/") != config.require_typ.lower()
    ):
        raise Rejected("bad_type")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise Rejected("unknown_key")
    key_set = await keys.key_set_for(kid)
    if key_set is None:
        raise Rejected("unknown_key")
    try:
        decoded = jwt.decode(token, key_set, algorithms=list(config.algorithms))
        registry = jwt.JWTClaimsRegistry(
            leeway=config.leeway,
            iss={"essential": True, "value": config.issuer},
            aud={"essential": True, "value": config.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        registry.validate(decoded.claims)
    except JoseError as exc:
        from .tokens import jose_reason

        raise Rejected(jose_reason(exc)) from None
    except (ValueError, TypeError, KeyError):
        raise Rejected("malformed") from None
    claims = decoded.claims
    now = int(time.time())
    iat = claims.get("iat")
    if config.max_token_age is not None:
        if not isinstance(iat, int) or now - iat > config.max_token_age + config.leeway:
            raise Rejected("too_old")
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise Rejected("invalid_claim")
    roles = _strings(_claim(claims, config.roles_claim)) if config.roles_claim else []
    role = "admin" if set(roles) & set(config.admin_roles) else "user"
    # The token's scopes, never beyond what the role may hold; the mapped admin role is
    # what admin routes need (providers rarely put our `admin` scope in their tokens).
    scopes = frozenset(_strings(claims.get(config.scope_claim))) & ROLE_SCOPES[role]
    if role == "admin":
        scopes |= {"admin"}
    client_id = claims.get("client_id") or claims.get("azp") or claims["sub"]
    jti = claims.get("jti") or claims.get("uti") or hashlib.sha256(token.encode()).hexdigest()
    from .tokens import TokenRejected, confirmation_key

    try:
        jkt = confirmation_key(claims.get("cnf"))
    except TokenRejected:
        raise Rejected("invalid_claim") from None
    return ExternalClaims(
        issuer=config.issuer,
        subject=external_subject(config.issuer, claims["sub"]),
        sub=claims["sub"],
        client_id=str(client_id),
        scopes=scopes,
        role=role,
        jti=str(jti),
        exp=int(claims["exp"]),
        jkt=jkt,
    )
