"""DPoP proofs (RFC 9449 §4.3): check one proof for one request, and return the
RFC 7638 thumbprint of its key or a reason code for refusing it.

The checks run in the order of RFC 9449 §4.3: `typ`, an asymmetric `alg` of ours,
a public-only `jwk`, the signature by that key, `jti`, `htm` and `htu` (against the
public URL under PORTCULLIS_ISSUER, never the Host header), `iat` within
IAT_WINDOW_SECONDS, `ath` for a resource request, `nonce` when demanded, and last
whether the `jti` is unseen: that is the one check with I/O (the replay cache), so a
proof refused for any other reason never costs a cache write. JWS and thumbprints are
joserfc's; nothing here is cryptography of its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import JWKRegistry
from joserfc.util import urlsafe_b64decode

from ..cache import BoundedCache
from .dpop_nonce import NonceKeys
from .dpop_uri import normalise_uri

# Asymmetric algorithms only (RFC 9449 §4.2); `none` and MACs never.
ALGORITHMS = ("ES256", "ES384", "Ed25519", "EdDSA", "RS256", "PS256")
IAT_WINDOW_SECONDS = 60  # a proof's `iat` may be this far from now, either way
REPLAY_TTL_SECONDS = 2 * IAT_WINDOW_SECONDS + 5  # a jti is kept while its `iat` is acceptable
MAX_PROOF_BYTES = 4096  # an RSA-4096 proof fits; anything larger is refused unparsed
MIN_RSA_BITS = 2048
PROOF_KEYS_KEPT = 1024  # checked proof headers kept (each at most MAX_PROOF_BYTES)

# joserfc's registry per algorithm, allowing it alone: a proof verifies under its header's.
_REGISTRIES = {alg: jws.JWSRegistry(algorithms=[alg]) for alg in ALGORITHMS}
_COMPACT = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KTY_FOR_ALG = {"ES256": "EC", "ES384": "EC", "Ed25519": "OKP", "EdDSA": "OKP"}
_KTY_FOR_ALG |= {"RS256": "RSA", "PS256": "RSA"}

# Every reason code (the metric's bounded label values, docs/operations.md).
REASONS = (
    "missing",
    "duplicated",
    "oversized",
    "malformed",
    "bad_type",
    "bad_algorithm",
    "private_key",
    "bad_key",
    "bad_signature",
    "missing_jti",
    "bad_method",
    "bad_uri",
    "bad_iat",
    "bad_ath",
    "nonce_required",
    "nonce_invalid",
    "replayed",
    "key_mismatch",
)


def _bits(modulus: str) -> int:
    return int.from_bytes(urlsafe_b64decode(modulus.encode()), "big").bit_length()


class Replays(Protocol):
    """The replay cache (security.dpop_replay): True the first time a key is seen."""

    async def first_use(self, key: str, ttl_seconds: int) -> bool: ...


class ProofRejected(Exception):
    """The proof is not acceptable; `reason` is one of REASONS. `use_nonce` means the
    client should retry with the server nonce (RFC 9449 §8 `use_dpop_nonce`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def use_nonce(self) -> bool:
        return self.reason in ("nonce_required", "nonce_invalid")


@dataclass(frozen=True, slots=True)
class Proof:
    jkt: str  # RFC 7638 SHA-256 thumbprint of the proof's key
    jti: str


@dataclass(frozen=True, slots=True)
class ProofRequest:
    """What a proof is checked against: the request's `DPoP` field values, its method
    and its path as sent (percent-encoding kept)."""

    fields: list[str]
    method: str
    path: str


def access_token_hash(token: str) -> str:
    """`ath` (RFC 9449 §4.2): base64url SHA-256 of the access token, no padding."""
    digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class _ProofKey:
    """A proof header that passed its checks: joserfc's model of its `alg`, its imported
    `jwk` (checked fit for that algorithm) and the key's thumbprint."""

    alg: JWSAlgModel
    key: Any
    jkt: str


class ProofChecker:
    """Checks proofs for one service: its public URL, nonce keys and replay cache."""

    def __init__(
        self, *, issuer: str, replay: Replays, nonces: NonceKeys, require_nonce: bool
    ) -> None:
        origin = urlsplit(issuer)
        self._base = f"{origin.scheme}://{origin.netloc}{origin.path.rstrip('/')}"
        if normalise_uri(self._base + "/") is None:
            raise ValueError(f"the issuer {issuer!r} is not an http(s) URL")
        self.replay = replay
        self.nonces = nonces
        self.require_nonce = require_nonce
        self._keys: BoundedCache[str, _ProofKey] = BoundedCache(PROOF_KEYS_KEPT)

    def expected_htu(self, path: str) -> str | None:
        """The request's URL under the issuer, normalised; None for a request target that
        is not a path (it would extend the issuer's host)."""
        return normalise_uri(self._base + path) if path.startswith("/") else None

    def _same_uri(self, htu: str, path: str) -> bool:
        """`htu` names the request's URL under the issuer, after normalisation. The same
        text as the URL (what clients send) normalises alike by definition, and, behind a
        path starting with `/`, to a valid URL: no need to normalise either then."""
        if path.startswith("/") and htu == self._base + path:
            return True
        expected = self.expected_htu(path)
        return expected is not None and normalise_uri(htu) == expected

    async def check(
        self, request: ProofRequest, *, access_token: str | None, jkt: str | None, now: float
    ) -> Proof:
        """The proof's key thumbprint, or ProofRejected. At a resource, `access_token`
        and its `jkt` are given: the proof must carry the token's `ath` and be by that key."""
        proof = self.check_offline(request, access_token=access_token, jkt=jkt, now=now)
        if not await self.replay.first_use(f"{proof.jkt}:{proof.jti}", REPLAY_TTL_SECONDS):
            raise ProofRejected("replayed")
        return proof

    def check_offline(
        self, request: ProofRequest, *, access_token: str | None, jkt: str | None, now: float
    ) -> Proof:
        """Every check but the replay cache's (no I/O)."""
        if not request.fields:
            raise ProofRejected("missing")
        if len(request.fields) > 1:
            raise ProofRejected("duplicated")
        value = request.fields[0].strip()
        if len(value) > MAX_PROOF_BYTES:
            raise ProofRejected("oversized")
        if not _COMPACT.fullmatch(value):
            raise ProofRejected("duplicated" if "," in value else "malformed")
        head = value.partition(".")[0]
        known = self._keys.get(head)
        proof_key = known or self._header_key(head)
        # The header was checked by joserfc (`_header_key`); its algorithm verifies the rest.
        signing_input, _, signature = value.encode("ascii").rpartition(b".")
        try:
            valid = proof_key.alg.verify(signing_input, urlsafe_b64decode(signature), proof_key.key)
        except (JoseError, ValueError, TypeError):
            valid = False
        if not valid:
            raise ProofRejected("bad_signature")
        if known is None:  # kept once a proof under it verified: junk cannot evict clients
            self._keys.put(head, proof_key)
        try:
            claims = json.loads(urlsafe_b64decode(signing_input.partition(b".")[2]))
        except (ValueError, RecursionError):
            raise ProofRejected("malformed") from None
        if not isinstance(claims, dict):
            raise ProofRejected("malformed")
        thumbprint = proof_key.jkt
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 1 <= len(jti) <= 256:
            raise ProofRejected("missing_jti")
        if claims.get("htm") != request.method:
            raise ProofRejected("bad_method")
        htu = claims.get("htu")
        if not isinstance(htu, str) or not self._same_uri(htu, request.path):
            raise ProofRejected("bad_uri")
        iat = claims.get("iat")
        if (
            not isinstance(iat, int | float)
            or isinstance(iat, bool)
            or not now - IAT_WINDOW_SECONDS <= iat <= now + IAT_WINDOW_SECONDS  # NaN fails
        ):
            raise ProofRejected("bad_iat")
        if access_token is not None:
            ath = claims.get("ath")
            if not (isinstance(ath, str) and ath.isascii()) or not hmac.compare_digest(
                ath, access_token_hash(access_token)
            ):
                raise ProofRejected("bad_ath")
        if self.require_nonce:
            nonce = claims.get("nonce")
            if nonce is None:
                raise ProofRejected("nonce_required")
            if not isinstance(nonce, str) or not self.nonces.valid(nonce, now):
                raise ProofRejected("nonce_invalid")
        if jkt is not None and not hmac.compare_digest(thumbprint, jkt):
            raise ProofRejected("key_mismatch")
        return Proof(jkt=thumbprint, jti=jti)

    @staticmethod
    def _header_key(head: str) -> _ProofKey:
        """A proof header's checked `alg`, imported `jwk` and its thumbprint; `check_offline`
        keeps it per header text (a client's every proof has the same) once one verified."""
        try:
            header = json.loads(urlsafe_b64decode(head.encode()))  # joserfc's: canonical only
        except (ValueError, RecursionError):
            raise ProofRejected("malformed") from None
        if not isinstance(header, dict):
            raise ProofRejected("malformed")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() != "dpop+jwt":
            raise ProofRejected("bad_type")
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise ProofRejected("bad_algorithm")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise ProofRejected("bad_key")
        if _PRIVATE_MEMBERS & jwk.keys():
            raise ProofRejected("private_key")
        if jwk.get("kty") != _KTY_FOR_ALG[alg]:
            raise ProofRejected("bad_key")
        if jwk["kty"] == "OKP" and jwk.get("crv") != "Ed25519":  # `EdDSA` means Ed25519 here
            raise ProofRejected("bad_key")
        if "b64" in header:  # RFC 7797's unencoded payload is not for JWTs (its §7)
            raise ProofRejected("malformed")
        registry = _REGISTRIES[alg]
        try:
            registry.check_header(header)  # joserfc: `crit` and the registered members
            with warnings.catch_warnings():
                # joserfc warns that RFC 9864 deprecates the name `EdDSA`; clients still
                # send it (it means Ed25519 here: the key is an OKP Ed25519 key).
                warnings.simplefilter("ignore", SecurityWarning)
                model = registry.get_alg(alg)
        except (JoseError, ValueError, TypeError):  # joserfc iterates a `crit` of any type
            raise ProofRejected("malformed") from None
        try:
            if jwk["kty"] == "RSA" and _bits(jwk["n"]) < MIN_RSA_BITS:  # whatever zeros lead
                raise ValueError("a weak RSA key")
            key = JWKRegistry.import_key(jwk)
            model.check_key(key)  # the key's type (and curve) fit the algorithm
            return _ProofKey(alg=model, key=key, jkt=key.thumbprint())
        except (JoseError, ValueError, TypeError, KeyError, AttributeError):
            raise ProofRejected("bad_key") from None
