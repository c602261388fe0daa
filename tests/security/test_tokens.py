"""Forged, tampered and stale bearer tokens: every one gets 401 invalid_token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey
from quart import Quart

from service.security.keys import KeyRing
from service.security.tokens import TokenRejected
from tests.conftest import bearer, login, register, svc_of

INVALID = 'Bearer realm="portcullis", error="invalid_token"'


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def segment(obj: dict[str, Any]) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def good_claims(app: Quart, user_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "https://localhost:8443",
        "aud": "portcullis",
        "sub": user_id,
        "client_id": "portcullis",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "j" * 32,
        "scope": "notes:read notes:write admin",
        "sid": "s",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def sign(app: Quart, claims: dict[str, Any], **header: Any) -> str:
    ring: KeyRing = svc_of(app).keys.ring
    head = {"alg": "ES256", "typ": "at+jwt", "kid": ring.current_kid, **header}
    head = {k: v for k, v in head.items() if v is not None}
    return jwt.encode(head, claims, ring.current, algorithms=["ES256"])


@pytest.fixture
async def user(client: httpx.AsyncClient) -> str:
    return await register(client, "mallory")


async def assert_rejected(client: httpx.AsyncClient, token: str) -> None:
    r = await client.get("/v1/users/me", headers=bearer(token))
    assert r.status_code == 401, (token[:40], r.text)
    assert r.headers["www-authenticate"] == INVALID
    assert r.headers["content-type"] == "application/problem+json"


async def test_valid_forged_shape_is_accepted_as_control(
    app: Quart, client: httpx.AsyncClient, user: str
) -> None:
    """The helper really signs acceptable tokens, so the rejections below are meaningful."""
    r = await client.get("/v1/users/me", headers=bearer(sign(app, good_claims(app, user))))
    assert r.status_code == 200


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_in_any_case(
    app: Quart, client: httpx.AsyncClient, user: str, alg: str
) -> None:
    head = {"alg": alg, "typ": "at+jwt", "kid": svc_of(app).keys.ring.current_kid}
    token = f"{segment(head)}.{segment(good_claims(app, user))}."
    await assert_rejected(client, token)
    await assert_rejected(client, token + "AAAAAAAAAAAA")


async def test_hmac_signed_with_public_key(
    app: Quart, client: httpx.AsyncClient, user: str
) -> None:
    ring = svc_of(app).keys.ring
    public = json.dumps(ring.public_jwks["keys"][-1]).encode()
    pem = ring.current.as_pem(private=False)
    for secret in (public, pem):
        head = segment({"alg": "HS256", "typ": "at+jwt", "kid": ring.current_kid})
        body = segment(good_claims(app, user))
        sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        await assert_rejected(client, f"{head}.{body}.{b64(sig)}")


async def test_tampered_payload(app: Quart, client: httpx.AsyncClient, user: str) -> None:
    token = sign(app, good_claims(app, user, scope="notes:read"))
    head, _, sig = token.split(".")
    forged = segment(good_claims(app, user, scope="notes:read notes:write admin"))
    await assert_rejected(client, f"{head}.{forged}.{sig}")


@pytest.mark.parametrize(
    "header",
    [
        {"typ": None},
        {"typ": "JWT"},
        {"typ": "at+jwt+evil"},
        {"kid": "not-a-key"},
        {"kid": None},
    ],
)
async def test_bad_headers(
    app: Quart, client: httpx.AsyncClient, user: str, header: dict[str, Any]
) -> None:
    await assert_rejected(client, sign(app, good_claims(app, user), **header))


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "https://evil.example"},
        {"aud": "someone-else"},
        {"exp": "now-120"},  # relative to when the test runs, not to collection
        {"nbf": "now+600"},
        {"exp": None},
        {"iss": None},
        {"aud": None},
        {"sub": None},
        {"jti": None},
        {"client_id": None},
        {"iat": None},
    ],
)
async def test_bad_claims(
    app: Quart, client: httpx.AsyncClient, user: str, change: dict[str, Any]
) -> None:
    now = int(time.time())
    change = {
        k: now + int(v[3:]) if isinstance(v, str) and v.startswith("now") else v
        for k, v in change.items()
    }
    await assert_rejected(client, sign(app, good_claims(app, user, **change)))


async def test_leeway_is_small(app: Quart, client: httpx.AsyncClient, user: str) -> None:
    just_expired = good_claims(app, user, exp=int(time.time()) - 30)
    r = await client.get("/v1/users/me", headers=bearer(sign(app, just_expired)))
    assert r.status_code == 200  # within the 60 s leeway
    await assert_rejected(client, sign(app, good_claims(app, user, exp=int(time.time()) - 90)))


@pytest.mark.parametrize("member", ["jku", "x5u", "jwk"])
async def test_attacker_key_headers_are_never_used(
    app: Quart, client: httpx.AsyncClient, user: str, member: str
) -> None:
    attacker = ECKey.generate_key("P-256", private=True)
    value: Any = "https://evil.example/jwks.json"
    if member == "jwk":
        value = attacker.as_dict(private=False)
    head = {"alg": "ES256", "typ": "at+jwt", "kid": "attacker", member: value}
    token = jwt.encode(head, good_claims(app, user), attacker, algorithms=["ES256"])
    await assert_rejected(client, token)
    # even reusing our kid does not make their key ours
    head["kid"] = svc_of(app).keys.ring.current_kid
    token = jwt.encode(head, good_claims(app, user), attacker, algorithms=["ES256"])
    await assert_rejected(client, token)


async def test_other_algorithms_and_keys(app: Quart, client: httpx.AsyncClient, user: str) -> None:
    kid = svc_of(app).keys.ring.current_kid
    for alg, key in (
        ("RS256", RSAKey.generate_key(2048)),
        ("Ed25519", OKPKey.generate_key("Ed25519")),
    ):
        head = {"alg": alg, "typ": "at+jwt", "kid": kid}
        await assert_rejected(
            client, jwt.encode(head, good_claims(app, user), key, algorithms=[alg])
        )


async def test_unknown_critical_header(app: Quart, client: httpx.AsyncClient, user: str) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    ring = svc_of(app).keys.ring
    head = {
        "alg": "ES256",
        "typ": "at+jwt",
        "kid": ring.current_kid,
        "crit": ["urn:evil"],
        "urn:evil": True,
    }
    signing_input = f"{segment(head)}.{segment(good_claims(app, user))}"
    private = ring.current.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    await assert_rejected(client, f"{signing_input}.{b64(signature)}")


@pytest.mark.parametrize(
    "token",
    [
        "x",
        "a.b.c",
        "....",
        "eyJhbGciOiJFUzI1NiJ9." + "A" * 5000 + ".sig",
        "eyJ" + "%" * 20 + ".eyJzdWIiOiJ4In0.AAAAAAAAAA",
        b64(b"[1,2]") + ".eyJzdWIiOiJ4In0.AAAAAAAAAA",
        b64(b"[" * 5000) + ".eyJzdWIiOiJ4In0.AAAAAAAAAA",
    ],
)
async def test_garbage_tokens_rejected_cheaply(client: httpx.AsyncClient, token: str) -> None:
    await assert_rejected(client, token)


async def test_oversized_token_rejected_before_crypto(app: Quart) -> None:
    with pytest.raises(TokenRejected) as info:
        svc_of(app).tokens.verify("a" * 5000)
    assert info.value.reason == "oversized"


async def test_scope_claim_cannot_exceed_issue(client: httpx.AsyncClient, app: Quart) -> None:
    await register(client, "scoped")
    tokens = await login(client, "scoped")
    principal = svc_of(app).tokens.verify(tokens["access_token"])
    assert "admin" not in principal.scopes
    r = await client.get("/v1/admin/users", headers=bearer(tokens["access_token"]))
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


async def test_missing_token_has_no_error_code(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/users/me")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="portcullis"'
    r = await client.get("/v1/users/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.headers["www-authenticate"] == 'Bearer realm="portcullis"'
    r = await client.get("/v1/users/me", headers={"Authorization": "Bearer "})
    assert r.headers["www-authenticate"] == INVALID


async def test_rejection_reasons_are_stable_codes(app: Quart, user: str) -> None:
    tokens = svc_of(app).tokens
    good = sign(app, good_claims(app, user))
    head, body, sig = good.split(".")
    none_head = segment({"alg": "none", "typ": "at+jwt", "kid": svc_of(app).keys.ring.current_kid})
    cases = {
        "expired": sign(app, good_claims(app, user, exp=int(time.time()) - 600)),
        "invalid_claim": sign(app, good_claims(app, user, aud="elsewhere")),
        "bad_signature": f"{head}.{body}.{sig[::-1]}",
        "bad_algorithm": f"{none_head}.{body}.{sig}",
        "bad_type": sign(app, good_claims(app, user), typ="JWT"),
        "unknown_key": sign(app, good_claims(app, user), kid="nope"),
        "malformed": "not-a-token",
        "oversized": "a" * 5000,
    }
    for reason, token in cases.items():
        with pytest.raises(TokenRejected) as info:
            tokens.verify(token)
        assert info.value.reason == reason, (reason, info.value.reason)


async def test_lifetime_longer_than_ours_is_refused(
    app: Quart, client: httpx.AsyncClient, user: str
) -> None:
    """A validly signed token (our key, e.g. leaked signing access or a bug elsewhere)
    cannot live longer than the access tokens we issue."""
    now = int(time.time())
    ttl = svc_of(app).settings.access_token_ttl
    ours = sign(app, good_claims(app, user, iat=now, nbf=now, exp=now + ttl))
    assert (await client.get("/v1/users/me", headers=bearer(ours))).status_code == 200
    for changes in (
        {"exp": now + 10 * 365 * 86400},
        {"exp": now + ttl + 3600},
        {"iat": now - 3600, "nbf": now - 3600, "exp": now + 300},  # backdated to stretch it
    ):
        token = sign(app, good_claims(app, user, **changes))
        await assert_rejected(client, token)
        with pytest.raises(TokenRejected) as info:
            svc_of(app).tokens.verify(token)
        assert info.value.reason == "invalid_claim"
