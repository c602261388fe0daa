"""A DPoP client for the tests: a key pair and proofs, well-formed or broken on purpose."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
import warnings
from typing import Any

from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

ISSUER = "https://api.example.com"  # PORTCULLIS_ISSUER here; the test client calls testserver
TOKEN_URL = f"{ISSUER}/v1/auth/token"
ME_URL = f"{ISSUER}/v1/users/me"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ath(token: str) -> str:
    return b64(hashlib.sha256(token.encode()).digest())


class Holder:
    """A client's DPoP key (ES256 unless told otherwise)."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        if alg.startswith("ES"):
            self.key: Any = ECKey.generate_key("P-256" if alg == "ES256" else "P-384", private=True)
        elif alg in ("EdDSA", "Ed25519"):
            self.key = OKPKey.generate_key("Ed25519", private=True)
        else:
            self.key = RSAKey.generate_key(2048, private=True)
        self.public = self.key.as_dict(private=False)

    @property
    def jkt(self) -> str:
        return str(self.key.thumbprint())

    def proof(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        nonce: str | None = None,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        sign_as: Any = None,
        alg: str | None = None,
        raw: bool = False,
    ) -> str:
        """A proof for `method url`; `header`/`claims` override members, `drop` removes
        claims, `sign_as` signs with another key than the one in `jwk`, `raw` signs the
        header as given (joserfc's serializer checks it first)."""
        head: dict[str, Any] = {"typ": "dpop+jwt", "alg": alg or self.alg, "jwk": self.public}
        head.update(header or {})
        body: dict[str, Any] = {
            "jti": uuid.uuid4().hex,
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if token is not None:
            body["ath"] = ath(token)
        if nonce is not None:
            body["nonce"] = nonce
        body.update(claims or {})
        for name in drop:
            body.pop(name, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            if raw:
                return signed(sign_as or self.key, alg or self.alg, head, json.dumps(body).encode())
            return jws.serialize_compact(
                {k: v for k, v in head.items() if v is not None},
                json.dumps(body).encode(),
                sign_as or self.key,
                algorithms=[alg or self.alg],
            )


def signed(key: Any, alg: str, header: dict[str, Any], payload: bytes) -> str:
    """A compact JWS of `payload` signed by `key` whatever its header says (joserfc's
    serializer would refuse some of these headers)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    signature = jws.JWSRegistry().get_alg(alg).sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"x" * 64) -> str:
    """A proof assembled by hand (for algorithms joserfc refuses to sign with)."""
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)]
    )
