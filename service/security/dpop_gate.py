"""DPoP at the service's edges: proofs at the token endpoint and at resources, the
RFC 9449 errors and challenges, the `DPoP-Nonce` field, and counting and logging every
proof (`portcullis_dpop_proofs_total{outcome}`, `auth.dpop_rejected`)."""

from __future__ import annotations

import time
from typing import Any

from ..errors import OAuthError
from ..logging import security_event
from ..metrics import Metrics
from .dpop import ALGORITHMS, Proof, ProofChecker, ProofRejected, ProofRequest

NONCE_HEADER = "DPoP-Nonce"
_ALGS = " ".join(ALGORITHMS)


def challenge(error: str | None = None, description: str | None = None) -> str:
    """The `WWW-Authenticate` value of the DPoP scheme (RFC 9449 §7.1)."""
    params = ['realm="portcullis"']
    if error is not None:
        params.append(f'error="{error}"')
    if description is not None:
        params.append(f'error_description="{description}"')
    params.append(f'algs="{_ALGS}"')
    return "DPoP " + ", ".join(params)


def proof_request(request: Any) -> ProofRequest:
    """A Quart request's `DPoP` fields, method and path as sent (not decoded)."""
    raw = request.scope.get("raw_path") if hasattr(request, "scope") else None
    path = raw.decode("latin-1").split("?", 1)[0] if raw else request.path
    return ProofRequest(request.headers.getlist("DPoP"), request.method, path)


class DPoPGate:
    def __init__(self, checker: ProofChecker, metrics: Metrics, *, required: bool) -> None:
        self.checker = checker
        self.metrics = metrics
        self.required = required

    @property
    def nonces_required(self) -> bool:
        return self.checker.require_nonce

    def nonce(self) -> str:
        return self.checker.nonces.issue(time.time())

    def response_headers(self, request: Any) -> dict[str, str]:
        """`DPoP-Nonce` on every answer to a DPoP request while nonces are demanded
        (RFC 9449 §8: the client keeps the newest)."""
        if not self.checker.require_nonce:
            return {}
        if "DPoP" not in request.headers:
            auth = request.headers.get("Authorization", "")
            if not auth[:5].lower().startswith("dpop "):
                return {}
        return {NONCE_HEADER: self.nonce()}

    async def check(
        self, request: ProofRequest, *, access_token: str | None = None, jkt: str | None = None
    ) -> Proof:
        """Check, count and log one proof; raise ProofRejected."""
        try:
            proof = await self.checker.check(
                request, access_token=access_token, jkt=jkt, now=time.time()
            )
        except ProofRejected as exc:
            self.rejected(exc.reason)
            raise
        self.metrics.dpop_proofs.labels("accepted").inc()
        return proof

    def rejected(self, reason: str) -> None:
        self.metrics.dpop_proofs.labels(reason).inc()
        security_event("auth.dpop_rejected", reason=reason)

    async def token_request(self, request: ProofRequest) -> str | None:
        """The key thumbprint a token request's proof binds to, None without a proof
        (refused when PORTCULLIS_DPOP_REQUIRED); a bad proof is RFC 9449 §5's 400."""
        if not request.fields:
            if self.required:
                raise self.missing_proof()
            return None
        try:
            proof = await self.check(request)
        except ProofRejected as exc:
            raise token_error(exc) from None
        return proof.jkt

    def missing_proof(self) -> OAuthError:
        self.rejected("missing")
        return OAuthError("invalid_dpop_proof", "A DPoP proof is required.")

    async def resource_request(self, request: ProofRequest, token: str, jkt: str) -> str | None:
        """None when the request's proof is fresh, by the key `jkt` and for this token;
        else the `WWW-Authenticate` challenge to answer with (RFC 9449 §7.1, §9)."""
        try:
            await self.check(request, access_token=token, jkt=jkt)
        except ProofRejected as exc:
            if exc.use_nonce:
                return challenge("use_dpop_nonce", "A DPoP nonce is required.")
            return challenge("invalid_dpop_proof", "The DPoP proof is not acceptable.")
        return None


def token_error(exc: ProofRejected) -> OAuthError:
    if exc.use_nonce:
        return OAuthError("use_dpop_nonce", "Resend the request with the DPoP nonce.")
    return OAuthError("invalid_dpop_proof", "The DPoP proof is not acceptable.")


def build_gate(
    *, issuer: str, replay: Any, keys: Any, metrics: Metrics, nonce: bool, required: bool
) -> DPoPGate:
    """The service's gate: the given replay cache (`dpop_replay.ReplayCache`, held by
    `Services`), nonces keyed by the signing key set."""
    from .dpop_nonce import NonceKeys

    checker = ProofChecker(
        issuer=issuer, replay=replay, nonces=NonceKeys(keys), require_nonce=nonce
    )
    return DPoPGate(checker, metrics, required=required)
