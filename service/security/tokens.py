"""RFC 9068 JWT access tokens: issued here, validated with Authlib's RFC 9068 validator.

Validation is pure CPU (no I/O): keys come from the in-memory KeyRing, revocations
from the in-memory denylist. Authlib's validator is adapted so that it
- accepts only our algorithm list (it would otherwise accept any joserfc default);
- requires `typ: at+jwt` (Authlib accepts a missing `typ`);
- requires a `kid` naming one of our keys, and never takes a key from the token
  (`jku`, `x5u`, `jwk`, `x5c` are never consulted: the key set is ours);
- checks `exp`/`nbf`/`iat` with a small leeway, and refuses a lifetime (`exp - iat`)
  longer than ours, so a validly signed token with a far `exp` is not accepted;
- rejects oversized or malformed tokens before any cryptography.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc9068 import JWTBearerTokenValidator
from authlib.oauth2.rfc9068.claims import JWTAccessTokenClaims
from joserfc import jwt
from joserfc.errors import BadSignatureError, ClaimError, ExpiredTokenError, JoseError

from ..cache import BoundedCache
from .keys import ALGORITHM, ALGORITHMS, KeyManager

LEEWAY_SECONDS = 60
MAX_TOKEN_BYTES = 4096
MAX_CACHED_TOKENS = 10_000  # verified tokens remembered (about 2 MB)
_JWS_COMPACT = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_TYP = frozenset({"at+jwt", "application/at+jwt"})


class TokenRejected(Exception):
    """The bearer token is not acceptable; `reason` is a stable code for logs/metrics."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    sub: str
    client_id: str
    scopes: frozenset[str]
    jti: str
    exp: int
    sid: str | None
    issuer: str | None = None  # set for a token of an external issuer (`sub` is its key)
    role: str | None = None  # an external subject's mapped role
    external_sub: str | None = None  # and its `sub` at that issuer
    jkt: str | None = None  # `cnf.jkt`: usable only with a DPoP proof by that key

    @property
    def is_external(self) -> bool:
        return self.issuer is not None

    @property
    def is_client(self) -> bool:
        return self.sid is None and self.issuer is None


class _Validator(JWTBearerTokenValidator):  # type: ignore[misc]
    """Authlib's RFC 9068 validator with our key set and algorithm allow-list."""

    def __init__(self, keys: KeyManager, issuer: str, audience: str) -> None:
        super().__init__(issuer=issuer, resource_server=audience, realm="portcullis")
        self.keys = keys

    def get_jwks(self) -> Any:
        return self.keys.ring.verify_set

    def authenticate_token(self, token_string: str) -> JWTAccessTokenClaims:
        claims_options = {
            "iss": {"essential": True, "validate": self.validate_iss},
            "exp": {"essential": True},
            "aud": {"essential": True, "value": self.resource_server},
            "sub": {"essential": True},
            "client_id": {"essential": True},
            "iat": {"essential": True},
            "jti": {"essential": True},
            "scope": {"essential": True},
        }
        token = jwt.decode(token_string, key=self.get_jwks(), algorithms=list(ALGORITHMS))
        return JWTAccessTokenClaims(token.claims, token.header, claims_options)


class TokenService:
    def __init__(self, keys: KeyManager, *, issuer: str, audience: str, access_ttl: int) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = access_ttl
        self._validator = _Validator(keys, issuer, audience)
        # sha256(token) → (principal, kid) of tokens verified before; no TTL of its own:
        # `verify` checks each hit against the token's `exp` and the published keys
        self._verified: BoundedCache[bytes, tuple[Principal, str]] = BoundedCache(MAX_CACHED_TOKENS)

    def issue(
        self,
        *,
        sub: str,
        client_id: str,
        scopes: frozenset[str],
        sid: str | None,
        jkt: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "client_id": client_id,
            "iat": now,
            "nbf": now,
            "exp": now + self.access_ttl,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(sorted(scopes)),
        }
        if sid is not None:
            claims["sid"] = sid
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}  # RFC 9449 §6.1
        ring = self.keys.signing()
        header = {"alg": ALGORITHM, "typ": "at+jwt", "kid": ring.current_kid}
        token = jwt.encode(header, claims, ring.current, algorithms=list(ALGORITHMS))
        return token, claims

    def verify(self, token: str) -> Principal:
        """Validate a bearer token; raise TokenRejected with a reason code. A token seen
        before is not verified again: its principal comes from a bounded cache, kept only
        until the token's `exp` and while its key is still published (revocation is the
        caller's denylist check, made on every request either way)."""
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRejected("oversized")
        digest = hashlib.sha256(token.encode()).digest()
        hit = self._verified.get(digest)
        if hit is not None:
            principal, kid = hit
            if time.time() <= principal.exp + LEEWAY_SECONDS and kid in self.keys.ring.kids:
                return principal
            self._verified.pop(digest)
        principal, kid = self._verify(token)
        self._verified.put(digest, (principal, kid))  # when full, the oldest entry goes
        return principal

    def _verify(self, token: str) -> tuple[Principal, str]:
        if not _JWS_COMPACT.fullmatch(token):
            raise TokenRejected("malformed")
        header = token_header(token)
        self._check_header(header)
        try:
            claims = self._validator.authenticate_token(token)
            claims.validate(now=int(time.time()), leeway=LEEWAY_SECONDS)
        except TokenRejected:
            raise
        except JoseError as exc:
            raise TokenRejected(jose_reason(exc)) from None
        except (ValueError, TypeError, KeyError):
            raise TokenRejected("malformed") from None
        lifetime = claims["exp"] - claims["iat"]  # both numbers: checked by validate()
        if lifetime > self.access_ttl + LEEWAY_SECONDS:
            raise TokenRejected("invalid_claim")
        scope = claims.get("scope")
        sid = claims.get("sid")
        if not isinstance(scope, str) or (sid is not None and not isinstance(sid, str)):
            raise TokenRejected("invalid_claim")
        jkt = confirmation_key(claims.get("cnf"))
        principal = Principal(
            sub=str(claims["sub"]),
            client_id=str(claims["client_id"]),
            scopes=frozenset(scope.split()),
            jti=str(claims["jti"]),
            exp=int(claims["exp"]),
            sid=sid,
            jkt=jkt,
        )
        return principal, str(header["kid"])

    def _check_header(self, header: dict[str, Any]) -> None:
        if header.get("alg") not in ALGORITHMS:
            raise TokenRejected("bad_algorithm")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _TYP:
            raise TokenRejected("bad_type")
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in self.keys.ring.kids:
            raise TokenRejected("unknown_key")


def confirmation_key(cnf: Any) -> str | None:
    """The `jkt` of a `cnf` claim (RFC 9449 §6.1), None without one; a `cnf` we cannot
    honour (another confirmation method, a malformed thumbprint) refuses the token."""
    if cnf is None:
        return None
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str) or not re.fullmatch(r"[A-Za-z0-9_-]{43}", jkt):
        raise TokenRejected("invalid_claim")
    return jkt


def unverified_issuer(token: str) -> Any:
    """The `iss` a compact JWS claims, unverified: it only chooses whose keys to try."""
    parts = token.split(".")
    if len(parts) != 3 or len(token) > MAX_TOKEN_BYTES:
        return None
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return payload.get("iss") if isinstance(payload, dict) else None


def token_header(token: str) -> dict[str, Any]:
    segment = token.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = json.loads(raw)
    except (ValueError, RecursionError):
        raise TokenRejected("malformed") from None
    if not isinstance(header, dict):
        raise TokenRejected("malformed")
    return header


def jose_reason(exc: JoseError) -> str:
    """A stable reason code for a joserfc failure."""
    if isinstance(exc, ExpiredTokenError):
        return "expired"
    if isinstance(exc, BadSignatureError):
        return "bad_signature"
    if isinstance(exc, ClaimError):
        return "invalid_claim"
    return "invalid"


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)
