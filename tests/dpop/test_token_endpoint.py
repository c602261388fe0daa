"""DPoP at the token endpoint and at a resource: the happy path, and every check of a
proof broken alone (RFC 9449 §4.3), refused at both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from quart import Quart

from service.security.dpop import ALGORITHMS, MAX_PROOF_BYTES
from tests.conftest import PASSWORD, register, svc_of

from .conftest import dpop_login
from .proofs import ISSUER, ME_URL, TOKEN_URL, Holder, ath, unsigned


def _unverified(token: str) -> dict[str, Any]:
    import base64
    import json

    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def proofs_counted(app: Quart, outcome: str) -> float:
    value = svc_of(app).metrics.dpop_proofs.labels(outcome)._value.get()
    return float(value)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA", "Ed25519"])
async def test_password_grant_binds_the_token_to_the_proof_key(
    app: Quart, client: httpx.AsyncClient, alg: str
) -> None:
    holder = Holder(alg)
    tokens = await dpop_login(client, holder)
    assert tokens["token_type"] == "DPoP"
    assert tokens["refresh_token"]
    claims = _unverified(tokens["access_token"])
    assert claims["cnf"] == {"jkt": holder.jkt}
    access = tokens["access_token"]
    r = await client.get(
        "/v1/users/me",
        headers={
            "Authorization": f"DPoP {access}",
            "DPoP": holder.proof("GET", ME_URL, token=access),
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "alice"
    assert proofs_counted(app, "accepted") == 2


async def test_without_a_proof_tokens_stay_bearer_tokens(client: httpx.AsyncClient) -> None:
    await register(client, "bob")
    r = await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": "bob", "password": PASSWORD}
    )
    assert r.json()["token_type"] == "Bearer"
    assert "cnf" not in _unverified(r.json()["access_token"])


async def test_metadata_lists_the_proof_algorithms(client: httpx.AsyncClient) -> None:
    meta = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert meta["dpop_signing_alg_values_supported"] == list(ALGORITHMS)
    assert not {"none", "HS256"} & set(meta["dpop_signing_alg_values_supported"])


# Each breaker makes the DPoP header values of a proof that breaks exactly one rule.
Breaker = Callable[[Holder, str, str, "str | None"], list[str]]


def _stranger_signed(h: Holder, m: str, u: str, t: str | None) -> list[str]:
    return [h.proof(m, u, token=t, sign_as=Holder().key)]


def _private_jwk(h: Holder, m: str, u: str, t: str | None) -> list[str]:
    return [h.proof(m, u, token=t, header={"jwk": h.key.as_dict(private=True)})]


def _symmetric(h: Holder, m: str, u: str, t: str | None) -> list[str]:
    import time

    claims = {"jti": "j" * 20, "htm": m, "htu": u, "iat": int(time.time())}
    if t is not None:
        claims["ath"] = ath(t)
    return [unsigned({"typ": "dpop+jwt", "alg": "HS256", "jwk": h.public}, claims)]


def _alg_none(h: Holder, m: str, u: str, t: str | None) -> list[str]:
    import time

    claims = {"jti": "j" * 20, "htm": m, "htu": u, "iat": int(time.time())}
    return [unsigned({"typ": "dpop+jwt", "alg": "none", "jwk": h.public}, claims, b"\0" * 8)]


BREAKERS: dict[str, tuple[str, Breaker]] = {
    "typ jwt": ("bad_type", lambda h, m, u, t: [h.proof(m, u, token=t, header={"typ": "JWT"})]),
    "typ missing": ("bad_type", lambda h, m, u, t: [h.proof(m, u, token=t, header={"typ": None})]),
    "alg HS256": ("bad_algorithm", _symmetric),
    "alg none": ("bad_algorithm", _alg_none),
    "private jwk": ("private_key", _private_jwk),
    "no jwk": ("bad_key", lambda h, m, u, t: [h.proof(m, u, token=t, header={"jwk": None})]),
    "signed by another key": ("bad_signature", _stranger_signed),
    "no jti": ("missing_jti", lambda h, m, u, t: [h.proof(m, u, token=t, drop=("jti",))]),
    "htm": (
        "bad_method",
        lambda h, m, u, t: [h.proof("PUT" if m != "PUT" else "GET", u, token=t)],
    ),
    "htm lower case": ("bad_method", lambda h, m, u, t: [h.proof(m.lower(), u, token=t)]),
    "htu other path": (
        "bad_uri",
        lambda h, m, u, t: [h.proof(m, u.replace("/v1/", "/v2/"), token=t)],
    ),
    "htu of the Host header": (
        "bad_uri",
        lambda h, m, u, t: [h.proof(m, u.replace(ISSUER, "https://testserver"), token=t)],
    ),
    "htu plain http": (
        "bad_uri",
        lambda h, m, u, t: [h.proof(m, u.replace("https://", "http://"), token=t)],
    ),
    "iat two minutes old": (
        "bad_iat",
        lambda h, m, u, t: [h.proof(m, u, token=t, claims={"iat": _now() - 120})],
    ),
    "iat two minutes ahead": (
        "bad_iat",
        lambda h, m, u, t: [h.proof(m, u, token=t, claims={"iat": _now() + 120})],
    ),
    "iat a string": (
        "bad_iat",
        lambda h, m, u, t: [h.proof(m, u, token=t, claims={"iat": str(_now())})],
    ),
    "duplicated header": (
        "duplicated",
        lambda h, m, u, t: [h.proof(m, u, token=t), h.proof(m, u, token=t)],
    ),
    "two proofs in one field": (
        "duplicated",
        lambda h, m, u, t: [h.proof(m, u, token=t) + ", " + h.proof(m, u, token=t)],
    ),
    "oversized": (
        "oversized",
        lambda h, m, u, t: [h.proof(m, u, token=t, claims={"pad": "x" * MAX_PROOF_BYTES})],
    ),
    "not a JWS": ("malformed", lambda *_: ["not.a.proof"]),
    # joserfc iterates `crit` as it comes: a number or nested lists are refused, not a 500
    "crit a number": (
        "malformed",
        lambda h, m, u, t: [h.proof(m, u, token=t, header={"crit": 1}, raw=True)],
    ),
    "crit nested lists": (
        "malformed",
        lambda h, m, u, t: [h.proof(m, u, token=t, header={"crit": [[1]]}, raw=True)],
    ),
    "iat too large for a float": (
        "bad_iat",
        lambda h, m, u, t: [h.proof(m, u, token=t, claims={"iat": 10**400})],
    ),
    "iat NaN": (
        "bad_iat",
        lambda h, m, u, t: [h.proof(m, u, token=t, claims={"iat": float("nan")})],
    ),
}


def _now() -> int:
    import time

    return int(time.time())


@pytest.mark.parametrize("case", list(BREAKERS))
async def test_a_proof_breaking_one_rule_is_refused_at_the_token_endpoint(
    app: Quart, client: httpx.AsyncClient, holder: Holder, case: str
) -> None:
    reason, breaker = BREAKERS[case]
    await register(client, "alice")
    headers = [("DPoP", value) for value in breaker(holder, "POST", TOKEN_URL, None)]
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        headers=headers,
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_dpop_proof"
    assert "access_token" not in r.text
    assert proofs_counted(app, reason) == 1


@pytest.mark.parametrize("case", [*BREAKERS, "ath of another token", "no ath", "ath not ASCII"])
async def test_a_proof_breaking_one_rule_is_refused_at_a_resource(
    app: Quart, client: httpx.AsyncClient, holder: Holder, case: str
) -> None:
    access = (await dpop_login(client, holder))["access_token"]
    if case == "ath of another token":
        reason, values = "bad_ath", [holder.proof("GET", ME_URL, token=access + "x")]
    elif case == "no ath":
        reason, values = "bad_ath", [holder.proof("GET", ME_URL)]
    elif case == "ath not ASCII":  # hmac.compare_digest refuses such text: no 500
        reason, values = "bad_ath", [holder.proof("GET", ME_URL, claims={"ath": "é" * 43})]
    else:
        reason, breaker = BREAKERS[case]
        values = breaker(holder, "GET", ME_URL, access)
    headers = [("Authorization", f"DPoP {access}"), *(("DPoP", v) for v in values)]
    r = await client.get("/v1/users/me", headers=headers)
    assert r.status_code == 401, r.text
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith("DPoP ")
    assert 'error="invalid_dpop_proof"' in challenge
    assert f'algs="{" ".join(ALGORITHMS)}"' in challenge
    assert proofs_counted(app, reason) == 1
    # the same token with a good proof still works: nothing was spent or revoked
    good = holder.proof("GET", ME_URL, token=access)
    ok = await client.get("/v1/users/me", headers={"Authorization": f"DPoP {access}", "DPoP": good})
    assert ok.status_code == 200


async def test_a_replayed_proof_is_refused_at_the_token_endpoint(
    app: Quart, client: httpx.AsyncClient, holder: Holder
) -> None:
    await register(client, "alice")
    proof = holder.proof("POST", TOKEN_URL)
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    first = await client.post("/v1/auth/token", data=form, headers={"DPoP": proof})
    assert first.status_code == 200
    again = await client.post("/v1/auth/token", data=form, headers={"DPoP": proof})
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_dpop_proof"
    assert proofs_counted(app, "replayed") == 1


async def test_a_replayed_proof_is_refused_at_a_resource(
    client: httpx.AsyncClient, holder: Holder
) -> None:
    access = (await dpop_login(client, holder))["access_token"]
    headers = {"Authorization": f"DPoP {access}", "DPoP": holder.proof("GET", ME_URL, token=access)}
    assert (await client.get("/v1/users/me", headers=headers)).status_code == 200
    r = await client.get("/v1/users/me", headers=headers)
    assert r.status_code == 401
    assert 'error="invalid_dpop_proof"' in r.headers["WWW-Authenticate"]


async def test_htu_is_compared_after_normalisation(
    client: httpx.AsyncClient, holder: Holder
) -> None:
    """RFC 9449 §4.3 / RFC 3986 §6.2: case of scheme and host, the default port,
    query and fragment, and the case of percent-encodings do not matter."""
    access = (await dpop_login(client, holder))["access_token"]
    for htu in (
        "HTTPS://API.Example.COM/v1/users/me",
        "https://api.example.com:443/v1/users/me",
        "https://api.example.com/v1/users/me?x=1#frag",
        "https://api.example.com/v1/%75sers/me",
    ):
        headers = {
            "Authorization": f"DPoP {access}",
            "DPoP": holder.proof("GET", htu, token=access),
        }
        r = await client.get("/v1/users/me", headers=headers)
        assert r.status_code == 200, (htu, r.text)
