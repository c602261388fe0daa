"""The proof checker without HTTP: URI normalisation and key rules (RFC 9449 §4.3)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import OctKey, OKPKey

from service.security.dpop import (
    PROOF_KEYS_KEPT,
    ProofChecker,
    ProofRejected,
    ProofRequest,
)
from service.security.dpop_nonce import NonceKeys
from service.security.dpop_uri import normalise_uri
from service.security.keys import KeyManager
from tests.support.cli import run_cli

from .proofs import ISSUER, ME_URL, Holder, b64, signed, unsigned


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("HTTPS://API.EXAMPLE.COM/v1/users/me", "https://api.example.com/v1/users/me"),
        ("https://api.example.com:443/a?q=1#f", "https://api.example.com/a"),
        ("http://api.example.com:80", "http://api.example.com/"),
        ("https://api.example.com:8443/a", "https://api.example.com:8443/a"),
        ("https://api.example.com/%7euser/%2f", "https://api.example.com/~user/%2F"),
        ("https://[::1]:443/x", "https://[::1]/x"),
        ("ftp://api.example.com/x", None),
        ("https://user:pw@api.example.com/x", None),
        ("https://api.example.com:99999/x", None),
        ("/v1/users/me", None),
    ],
)
def test_normalise_uri(given: str, expected: str | None) -> None:
    assert normalise_uri(given) == expected


def checker(tmp_path: Path) -> ProofChecker:
    class Never:
        async def first_use(self, key: str, ttl_seconds: int) -> bool:  # noqa: ARG002
            return True

    keys = KeyManager(tmp_path / "jwks.json")
    return ProofChecker(issuer=ISSUER, replay=Never(), nonces=NonceKeys(keys), require_nonce=False)


def reason(check: ProofChecker, proof: str, *, jkt: str | None = None) -> str:
    with pytest.raises(ProofRejected) as caught:
        check.check_offline(
            ProofRequest([proof], "GET", "/v1/users/me"),
            access_token=None,
            jkt=jkt,
            now=time.time(),
        )
    return caught.value.reason


def test_key_rules(tmp_path: Path) -> None:
    check = checker(tmp_path)
    holder = Holder()
    claims = {"jti": "j" * 16, "htm": "GET", "htu": ME_URL, "iat": int(time.time())}
    weak = {"kty": "RSA", "n": "AQAB" * 40, "e": "AQAB"}  # a 960-bit modulus
    assert reason(check, unsigned({"typ": "dpop+jwt", "alg": "RS256", "jwk": weak}, claims)) == (
        "bad_key"
    )
    # the same weak modulus behind leading zero bytes: judged by its size, not its text
    modulus = rsa.generate_private_key(65537, 1024).public_key().public_numbers().n  # noqa: S505
    padded = {"kty": "RSA", "n": b64(b"\0" * 160 + modulus.to_bytes(128, "big")), "e": "AQAB"}
    assert reason(check, unsigned({"typ": "dpop+jwt", "alg": "RS256", "jwk": padded}, claims)) == (
        "bad_key"
    )
    # `EdDSA` means Ed25519 here: an Ed448 key is refused before any signature is checked
    ed448 = OKPKey.generate_key("Ed448", private=True).as_dict(private=False)
    assert reason(check, unsigned({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": ed448}, claims)) == (
        "bad_key"
    )
    # an EC key under an RSA algorithm, and a symmetric key
    mixed = {"typ": "dpop+jwt", "alg": "RS256", "jwk": holder.public}
    assert reason(check, unsigned(mixed, claims)) == "bad_key"
    oct_jwk = OctKey.generate_key(256).as_dict(private=False)
    assert reason(check, holder.proof("GET", ME_URL, header={"jwk": oct_jwk})) == "private_key"
    # by the right key, but not the one a token is bound to
    other = Holder()
    assert reason(check, holder.proof("GET", ME_URL), jkt=other.jkt) == "key_mismatch"
    assert reason(check, holder.proof("GET", ME_URL, claims={"jti": "x" * 300})) == "missing_jti"
    assert reason(check, holder.proof("GET", ME_URL, claims={"iat": True})) == "bad_iat"


def test_a_known_header_still_needs_its_own_signature_and_claims(tmp_path: Path) -> None:
    """Checked headers are kept (a client sends the same one with every proof): a later
    proof with that header is still refused for a signature by another key, a forged
    payload or a bad claim, and the kept headers stay bounded."""
    check = checker(tmp_path)
    holder, thief = Holder(), Holder()
    request = ProofRequest([holder.proof("GET", ME_URL)], "GET", "/v1/users/me")
    good = check.check_offline(request, access_token=None, jkt=None, now=time.time())
    assert good.jkt == holder.jkt
    assert reason(check, holder.proof("GET", ME_URL, sign_as=thief.key)) == "bad_signature"
    head, _, signature = holder.proof("GET", ME_URL).split(".")
    forged = {"jti": "f" * 16, "htm": "GET", "htu": ME_URL, "iat": int(time.time())}
    forged_payload = unsigned({}, forged).split(".")[1]
    assert reason(check, f"{head}.{forged_payload}.{signature}") == "bad_signature"
    assert reason(check, holder.proof("GET", ME_URL, claims={"htm": "POST"})) == "bad_method"
    assert reason(check, holder.proof("GET", ME_URL), jkt=thief.jkt) == "key_mismatch"
    for _ in range(PROOF_KEYS_KEPT + 50):  # a flood of fresh keys
        one = Holder()
        check.check_offline(
            ProofRequest([one.proof("GET", ME_URL)], "GET", "/v1/users/me"),
            access_token=None,
            jkt=None,
            now=time.time(),
        )
    assert len(check._keys) == PROOF_KEYS_KEPT
    # a header is kept only once a proof under it verified: unsigned junk evicts no one
    check._keys.clear()
    stranger = Holder()
    assert reason(check, stranger.proof("GET", ME_URL, sign_as=thief.key)) == "bad_signature"
    assert len(check._keys) == 0


def test_the_jws_itself_is_checked_by_joserfc(tmp_path: Path) -> None:
    """The checker verifies the signature with joserfc's algorithm over the segments as
    sent: an unknown critical extension, a signature of the wrong size or of another
    algorithm's shape, an RFC 7797 unencoded payload, and a signed payload that is no
    JSON object are each refused, never an error."""
    check = checker(tmp_path)
    holder = Holder()
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": holder.public}
    claims = {"jti": "j" * 16, "htm": "GET", "htu": ME_URL, "iat": int(time.time())}
    good = signed(holder.key, holder.alg, header, json.dumps(claims).encode())
    assert (
        check.check_offline(
            ProofRequest([good], "GET", "/v1/users/me"),
            access_token=None,
            jkt=None,
            now=time.time(),
        ).jkt
        == holder.jkt
    )
    critical = {**header, "crit": ["urn:example:unknown"], "urn:example:unknown": 1}
    assert (
        reason(check, signed(holder.key, holder.alg, critical, json.dumps(claims).encode()))
        == "malformed"
    )
    unencoded = {**header, "b64": False, "crit": ["b64"]}  # RFC 7797 has no place in a JWT
    assert (
        reason(check, signed(holder.key, holder.alg, unencoded, json.dumps(claims).encode()))
        == "malformed"
    )
    head, payload, signature = good.split(".")
    short = b64(base64.urlsafe_b64decode(signature + "==")[:-1])
    assert reason(check, f"{head}.{payload}.{short}") == "bad_signature"
    assert reason(check, f"{head}.{payload}.{b64(b'x' * 256)}") == "bad_signature"
    for junk in (b"[1, 2]", b"not json", b'"jti"'):
        assert reason(check, signed(holder.key, holder.alg, header, junk)) == "malformed"
    odd_crits: list[Any] = [1, None, True, [[1]], [{}]]
    for crit in odd_crits:  # joserfc iterates and hashes `crit` as it is
        odd = signed(holder.key, holder.alg, {**header, "crit": crit}, json.dumps(claims).encode())
        assert reason(check, odd) == "malformed"
    # a header segment is decoded strictly: one spelling per header (unused bits zero)
    for indent in (None, 1, 2, 3):
        text = b64(json.dumps(header, indent=indent).encode())
        if len(text) % 4:
            break
    canonical = f"{text}.{b64(json.dumps(claims).encode())}.{b64(b'x' * 64)}"
    assert reason(check, canonical) == "bad_signature"  # decoded, checked, then verified
    last = "AQgw" if len(text) % 4 == 3 else "AEIMQUYcgkosw048"  # the zero-bit endings
    sloppy = text[:-1] + chr(ord(text[-1]) + 1)
    assert text[-1] in last and sloppy[-1] not in last
    assert reason(check, f"{sloppy}.{b64(json.dumps(claims).encode())}.{b64(b'x' * 64)}") == (
        "malformed"
    )


def test_create_client_can_demand_dpop(tmp_path: Path) -> None:
    done = run_cli(
        tmp_path / "var", "create-client", "etl", "--scope", "notes:read", "--dpop-bound"
    )
    assert done.returncode == 0, done.stderr
    import asyncio
    import json

    from service.store.db import Database
    from service.store.users import get_client

    client_id = json.loads(done.stdout)["client_id"]

    async def read() -> bool:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'portcullis.db'}")
        try:
            row = await get_client(db, client_id=client_id)
        finally:
            await db.close()
        assert row is not None
        return row.dpop_bound_access_tokens

    assert asyncio.run(read()) is True


def test_htu_is_compared_after_normalisation_and_never_trusts_the_path(tmp_path: Path) -> None:
    check = checker(tmp_path)
    holder = Holder()

    def accepted(htu: str, path: str = "/v1/users/me") -> bool:
        try:
            check.check_offline(
                ProofRequest([holder.proof("GET", htu)], "GET", path),
                access_token=None,
                jkt=None,
                now=time.time(),
            )
        except ProofRejected as refused:
            assert refused.reason == "bad_uri"
            return False
        return True

    assert accepted(ME_URL)  # the same text: no normalisation needed
    assert accepted("HTTPS://API.EXAMPLE.COM:443/v1/users/me?page=2#top")
    assert accepted(f"{ISSUER}/v1/notes/%7e", "/v1/notes/~")
    assert not accepted(f"{ISSUER}/v1/users/me/")
    # a request target that is not a path never extends the issuer's authority
    assert not accepted("https://api.example.com@evil.example/x", "@evil.example/x")
    assert not accepted("https://api.example.com.evil.example/x", ".evil.example/x")


def test_an_issuer_that_is_no_url_is_refused(tmp_path: Path) -> None:
    keys = KeyManager(tmp_path / "jwks.json")
    with pytest.raises(ValueError, match="not an http"):
        ProofChecker(issuer="ftp://x", replay=None, nonces=NonceKeys(keys), require_nonce=False)  # type: ignore[arg-type]
