"""Key binding through every grant, and stolen tokens from the attacker's side."""

from __future__ import annotations

from typing import Any

import httpx
from quart import Quart

from service.domain import identity
from tests.conftest import PASSWORD, SettingsFactory, client_for, register, svc_of

from .conftest import dpop_login
from .proofs import ISSUER, ME_URL, TOKEN_URL, Holder

NOTES_URL = f"{ISSUER}/v1/notes"


def dpop_headers(holder: Holder, access: str, method: str = "GET", url: str = ME_URL) -> Any:
    return {
        "Authorization": f"DPoP {access}",
        "DPoP": holder.proof(method, url, token=access),
    }


async def refresh(client: httpx.AsyncClient, token: str, holder: Holder | None) -> httpx.Response:
    headers = {"DPoP": holder.proof("POST", TOKEN_URL)} if holder else {}
    return await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        headers=headers,
    )


async def test_a_stolen_bound_token_is_refused_as_bearer(
    client: httpx.AsyncClient, holder: Holder
) -> None:
    access = (await dpop_login(client, holder))["access_token"]
    # the owner's use first: the token is now in the verified-token cache
    assert (
        await client.get("/v1/users/me", headers=dpop_headers(holder, access))
    ).status_code == 200
    r = await client.get("/v1/users/me", headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith(
        'Bearer realm="portcullis", error="invalid_token"'
    )
    assert "DPoP " in r.headers["WWW-Authenticate"]  # both schemes offered (RFC 9449 §7.2)
    # and as Bearer with the owner's (captured) proof beside it
    r = await client.get(
        "/v1/users/me",
        headers={
            "Authorization": f"Bearer {access}",
            "DPoP": holder.proof("GET", ME_URL, token=access),
        },
    )
    assert r.status_code == 401


async def test_a_stolen_bound_token_is_refused_with_the_thiefs_own_key(
    app: Quart, client: httpx.AsyncClient, holder: Holder
) -> None:
    access = (await dpop_login(client, holder))["access_token"]
    thief = Holder()
    r = await client.get("/v1/users/me", headers=dpop_headers(thief, access))
    assert r.status_code == 401
    assert 'error="invalid_dpop_proof"' in r.headers["WWW-Authenticate"]
    assert svc_of(app).metrics.dpop_proofs.labels("key_mismatch")._value.get() == 1
    # a captured proof of the owner's, replayed by the thief, is spent already
    proof = holder.proof("GET", ME_URL, token=access)
    ok = await client.get(
        "/v1/users/me", headers={"Authorization": f"DPoP {access}", "DPoP": proof}
    )
    assert ok.status_code == 200
    again = await client.get(
        "/v1/users/me", headers={"Authorization": f"DPoP {access}", "DPoP": proof}
    )
    assert again.status_code == 401


async def test_an_unbound_token_is_refused_with_the_dpop_scheme(
    client: httpx.AsyncClient, holder: Holder
) -> None:
    await register(client, "bob")
    r = await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": "bob", "password": PASSWORD}
    )
    access = r.json()["access_token"]
    r = await client.get("/v1/users/me", headers=dpop_headers(holder, access))
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("DPoP ")
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    # a bound scheme without a proof at all
    bound = (await dpop_login(client, holder, "carol"))["access_token"]
    r = await client.get("/v1/users/me", headers={"Authorization": f"DPoP {bound}"})
    assert r.status_code == 401
    assert 'error="invalid_dpop_proof"' in r.headers["WWW-Authenticate"]


async def test_refresh_needs_a_proof_by_the_same_key(
    client: httpx.AsyncClient, holder: Holder
) -> None:
    tokens = await dpop_login(client, holder)
    thief = Holder()
    stolen = await refresh(client, tokens["refresh_token"], thief)
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    bare = await refresh(client, tokens["refresh_token"], None)
    assert bare.status_code == 400
    assert bare.json()["error"] == "invalid_grant"
    # neither attempt spent the token: the owner refreshes, and gets a bound pair again
    own = await refresh(client, tokens["refresh_token"], holder)
    assert own.status_code == 200, own.text
    body = own.json()
    assert body["token_type"] == "DPoP"
    assert body["scope"] == tokens["scope"]
    r = await client.get("/v1/users/me", headers=dpop_headers(holder, body["access_token"]))
    assert r.status_code == 200
    # the next refresh token is bound too
    assert (await refresh(client, body["refresh_token"], thief)).status_code == 400


async def test_reuse_detection_still_revokes_a_bound_session(
    client: httpx.AsyncClient, holder: Holder
) -> None:
    tokens = await dpop_login(client, holder)
    first = await refresh(client, tokens["refresh_token"], holder)
    assert first.status_code == 200
    reused = await refresh(client, tokens["refresh_token"], holder)
    assert reused.status_code == 400
    # the whole session is gone: the newest refresh token and its access token too
    assert (await refresh(client, first.json()["refresh_token"], holder)).status_code == 400
    access = first.json()["access_token"]
    r = await client.get("/v1/users/me", headers=dpop_headers(holder, access))
    assert r.status_code == 401


async def test_a_bound_access_token_can_be_revoked(
    client: httpx.AsyncClient, holder: Holder
) -> None:
    access = (await dpop_login(client, holder))["access_token"]
    assert (await client.post("/v1/auth/revoke", data={"token": access})).status_code == 200
    r = await client.get("/v1/users/me", headers=dpop_headers(holder, access))
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


async def test_client_credentials_with_a_proof(
    app: Quart, client: httpx.AsyncClient, holder: Holder
) -> None:
    created = await identity.create_client(
        svc_of(app), name="etl", scopes=["notes:read"], actor=None, ip=None
    )
    form = {
        "grant_type": "client_credentials",
        "client_id": created.client_id,
        "client_secret": created.client_secret,
    }
    r = await client.post(
        "/v1/auth/token", data=form, headers={"DPoP": holder.proof("POST", TOKEN_URL)}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "DPoP"
    assert "refresh_token" not in body
    access = body["access_token"]
    url = f"{NOTES_URL}"
    ok = await client.get("/v1/notes", headers=dpop_headers(holder, access, "GET", url))
    assert ok.status_code == 200
    assert (
        await client.get("/v1/notes", headers={"Authorization": f"Bearer {access}"})
    ).status_code == 401


async def test_a_dpop_bound_client_needs_a_proof(
    app: Quart, client: httpx.AsyncClient, holder: Holder
) -> None:
    from tests.conftest import make_admin

    admin = await make_admin(app, client)
    r = await client.post(
        "/v1/admin/clients",
        json={"name": "bound", "scopes": ["notes:read"], "dpop_bound_access_tokens": True},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    form = {
        "grant_type": "client_credentials",
        "client_id": created["client_id"],
        "client_secret": created["client_secret"],
    }
    await only_with_a_proof(client, form, holder)


async def test_dpop_required_refuses_token_requests_without_a_proof(
    settings_factory: SettingsFactory, holder: Holder
) -> None:
    from service import create_app

    app = create_app(settings_factory(issuer=ISSUER, dpop_required=True))
    async with app.test_app(), client_for(app) as client:
        await register(client, "alice")
        form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
        await only_with_a_proof(client, form, holder)


async def only_with_a_proof(
    client: httpx.AsyncClient, form: dict[str, str], holder: Holder
) -> None:
    """Refused without a proof (400 invalid_dpop_proof); a bound token with one."""
    refused = await client.post("/v1/auth/token", data=form)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_dpop_proof"
    r = await client.post(
        "/v1/auth/token", data=form, headers={"DPoP": holder.proof("POST", TOKEN_URL)}
    )
    assert r.status_code == 200
    assert r.json()["token_type"] == "DPoP"
