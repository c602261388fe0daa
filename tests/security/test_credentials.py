"""Ambiguous credentials: two `Authorization` fields, or one field holding a list, are
refused with 400 invalid_request on every route, before anything is done."""

from __future__ import annotations

import base64

import httpx
from quart import Quart

from tests.conftest import client_token, make_admin, user_token

INVALID_REQUEST = 'Bearer realm="portcullis", error="invalid_request"'


def assert_invalid_request(r: httpx.Response) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == INVALID_REQUEST
    assert r.json()["status"] == 400


async def test_two_bearer_fields_are_refused_on_protected_routes(
    app: Quart, client: httpx.AsyncClient
) -> None:
    alice = await user_token(client, "alice")
    admin = await make_admin(app, client)
    forged = "forged.token.value"
    combos = [
        [("Authorization", f"Bearer {alice}"), ("Authorization", f"Bearer {forged}")],
        [("Authorization", f"Bearer {forged}"), ("Authorization", f"Bearer {alice}")],
        [("Authorization", f"Bearer {alice}"), ("Authorization", f"Bearer {alice}")],
        [("Authorization", f"Bearer {alice}"), ("authorization", f"Bearer {admin}")],
        [("Authorization", f"Bearer {alice}"), ("Authorization", "Basic dXNlcjpwYXNz")],
        [("Authorization", f"Bearer {alice}"), ("Authorization", "")],
        [("Authorization", f"Bearer {alice}, Bearer {forged}")],
        [("Authorization", f"Bearer {alice},Bearer {admin}")],
        [("Authorization", f"Bearer {alice} Bearer {forged}")],
        [("Authorization", f"Basic dXNlcjpwYXNz, Bearer {alice}")],
    ]
    for headers in combos:
        for method, path in (
            ("GET", "/v1/users/me"),
            ("GET", "/v1/notes"),
            ("GET", "/v1/admin/users"),
        ):
            r = await client.request(method, path, headers=headers)
            assert_invalid_request(r)
        r = await client.post("/v1/notes", json={"title": "smuggled"}, headers=headers)
        assert_invalid_request(r)
    # Nothing was written, and one credential in one field still works.
    one = [("Authorization", f"Bearer {alice}")]
    r = await client.get("/v1/notes", headers=one)
    assert r.status_code == 200 and r.json()["items"] == []
    r = await client.get("/v1/admin/users", headers=[("Authorization", f"Bearer {admin}")])
    assert r.status_code == 200


async def test_token_endpoint_refuses_two_client_credentials(
    app: Quart, client: httpx.AsyncClient
) -> None:
    created, _ = await client_token(app, client, ["notes:read"])
    good = base64.b64encode(f"{created.client_id}:{created.client_secret}".encode()).decode()
    bad = base64.b64encode(f"{created.client_id}:wrong".encode()).decode()
    form = {"grant_type": "client_credentials"}
    for headers in (
        [("Authorization", f"Basic {good}"), ("Authorization", f"Basic {bad}")],
        [("Authorization", f"Basic {bad}"), ("Authorization", f"Basic {good}")],
        [("Authorization", f"Basic {good}"), ("Authorization", f"Basic {good}")],
        [("Authorization", f"Basic {good}, Basic {bad}")],
        [("Authorization", f"Basic {good} Basic {bad}")],
    ):
        r = await client.post("/v1/auth/token", data=form, headers=headers)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "invalid_request", r.text
        assert "access_token" not in r.text
    r = await client.post("/v1/auth/token", data=form, headers={"Authorization": f"Basic {good}"})
    assert r.status_code == 200 and r.json()["access_token"]
    two = [("Authorization", f"Basic {good}"), ("Authorization", f"Basic {bad}")]
    r = await client.post("/v1/auth/revoke", data={"token": r.json()["access_token"]}, headers=two)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text


async def test_public_routes_refuse_ambiguous_credentials_too(
    client: httpx.AsyncClient,
) -> None:
    two = [("Authorization", "Bearer a"), ("Authorization", "Bearer b")]
    assert_invalid_request(await client.get("/healthz", headers=two))
    r = await client.post(
        "/v1/auth/register", json={"username": "twice", "password": "x" * 16}, headers=two
    )
    assert_invalid_request(r)
    # A single malformed bearer value keeps its 401 invalid_token answer.
    r = await client.get("/v1/users/me", headers={"Authorization": "Bearer "})
    assert r.status_code == 401
