"""Administration routes: function-level authorization, user changes, clients, audit."""

from __future__ import annotations

import httpx
from quart import Quart

from tests.conftest import (
    PASSWORD,
    bearer,
    client_token,
    login,
    make_admin,
    register,
    user_token,
)

ADMIN_ROUTES = [
    ("GET", "/v1/admin/users", None),
    ("PATCH", "/v1/admin/users/00000000-0000-4000-8000-000000000000", {"disabled": True}),
    ("POST", "/v1/admin/clients", {"name": "x", "scopes": ["admin"]}),
    ("GET", "/v1/admin/audit", None),
    ("GET", "/v1/admin/blocks", None),
    ("DELETE", "/v1/admin/blocks/192.0.2.1", None),
]


async def test_admin_routes_refuse_users_and_clients_without_admin(
    app: Quart, client: httpx.AsyncClient
) -> None:
    user = bearer(await user_token(client, "plain"))
    robot, token = await client_token(app, client, ["notes:read", "notes:write"])
    robot_token = bearer(token)
    for method, url, body in ADMIN_ROUTES:
        for who in (user, robot_token):
            r = await client.request(method, url, json=body, headers=who)
            assert r.status_code == 403, (method, url, r.text)
            assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
        r = await client.request(method, url, json=body)
        assert r.status_code == 401
    # nothing changed: no client was created, no user disabled
    admin = bearer(await make_admin(app, client))
    events = (await client.get("/v1/admin/audit?limit=100", headers=admin)).json()["items"]
    assert [
        e for e in events if e["event"] == "client.created" and e["target"] != robot.client_id
    ] == []


async def test_list_users_paged_without_hashes(app: Quart, client: httpx.AsyncClient) -> None:
    admin = bearer(await make_admin(app, client))
    for i in range(4):
        await register(client, f"user{i}")
    page = (await client.get("/v1/admin/users?limit=2", headers=admin)).json()
    assert [u["username"] for u in page["items"]] == ["user3", "user2"]
    page2 = (
        await client.get(f"/v1/admin/users?limit=2&cursor={page['next_cursor']}", headers=admin)
    ).json()
    assert [u["username"] for u in page2["items"]] == ["user1", "user0"]
    text = (await client.get("/v1/admin/users?limit=100", headers=admin)).text
    assert "argon2" not in text and "password" not in text


async def test_disable_user_revokes_tokens_and_enable_restores_login(
    app: Quart, client: httpx.AsyncClient
) -> None:
    admin = bearer(await make_admin(app, client))
    uid = await register(client, "victim")
    tokens = await login(client, "victim")
    r = await client.patch(f"/v1/admin/users/{uid}", json={"disabled": True}, headers=admin)
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert (
        await client.get("/v1/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 401
    r = await client.patch(f"/v1/admin/users/{uid}", json={"disabled": False}, headers=admin)
    assert r.status_code == 200
    assert (await login(client, "victim"))["access_token"]


async def test_role_change_takes_effect_on_next_request(
    app: Quart, client: httpx.AsyncClient
) -> None:
    admin = bearer(await make_admin(app, client))
    uid = await register(client, "promoted")
    r = await client.patch(f"/v1/admin/users/{uid}", json={"role": "admin"}, headers=admin)
    assert r.status_code == 200 and r.json()["role"] == "admin"
    new_admin = await login(client, "promoted")
    assert "admin" in new_admin["scope"].split()
    r = await client.get("/v1/admin/users", headers=bearer(new_admin["access_token"]))
    assert r.status_code == 200
    r = await client.patch(f"/v1/admin/users/{uid}", json={"role": "user"}, headers=admin)
    # The demoted user's admin token stops working at once.
    r = await client.get("/v1/admin/users", headers=bearer(new_admin["access_token"]))
    assert r.status_code == 401


async def test_admin_patch_validation(app: Quart, client: httpx.AsyncClient) -> None:
    admin = bearer(await make_admin(app, client))
    uid = await register(client, "target")
    for body in (
        {},
        {"role": "root"},
        {"disabled": "yes"},
        {"password_hash": "x"},
        {"username": "y"},
    ):
        r = await client.patch(f"/v1/admin/users/{uid}", json=body, headers=admin)
        assert r.status_code == 422, body
    r = await client.patch(
        "/v1/admin/users/00000000-0000-4000-8000-000000000000",
        json={"disabled": True},
        headers=admin,
    )
    assert r.status_code == 404


async def test_create_client_secret_shown_once(app: Quart, client: httpx.AsyncClient) -> None:
    admin = bearer(await make_admin(app, client))
    r = await client.post(
        "/v1/admin/clients", json={"name": "etl", "scopes": ["notes:read"]}, headers=admin
    )
    assert r.status_code == 201
    created = r.json()
    assert set(created) == {"client_id", "name", "scopes", "client_secret"}
    assert len(created["client_secret"]) >= 40
    for body in (
        {"name": "x", "scopes": ["root"]},
        {"name": "x", "scopes": []},
        {"name": "", "scopes": ["admin"]},
    ):
        assert (await client.post("/v1/admin/clients", json=body, headers=admin)).status_code == 422
    audit = (await client.get("/v1/admin/audit?limit=100", headers=admin)).text
    assert created["client_secret"] not in audit


async def test_audit_trail_records_security_events(app: Quart, client: httpx.AsyncClient) -> None:
    admin = bearer(await make_admin(app, client))
    uid = await register(client, "watched")
    await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "watched", "password": "wrong-password-1"},
    )
    tokens = await login(client, "watched")
    await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    await client.patch(f"/v1/admin/users/{uid}", json={"disabled": True}, headers=admin)
    await client.post(
        "/v1/admin/clients", json={"name": "c", "scopes": ["notes:read"]}, headers=admin
    )
    events = (await client.get("/v1/admin/audit?limit=100", headers=admin)).json()["items"]
    names = [e["event"] for e in events]
    for expected in (
        "auth.login_failed",
        "auth.login",
        "auth.refresh_reuse",
        "user.disabled",
        "client.created",
    ):
        assert expected in names, names
    assert all(set(e) == {"id", "ts", "event", "actor", "target", "ip"} for e in events)
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    first = (await client.get("/v1/admin/audit?limit=2", headers=admin)).json()
    second = (
        await client.get(f"/v1/admin/audit?limit=2&cursor={first['next_cursor']}", headers=admin)
    ).json()
    assert first["items"][-1]["id"] > second["items"][0]["id"]
    # the API offers no way to alter the trail
    for method in ("POST", "PATCH", "DELETE", "PUT"):
        r = await client.request(method, "/v1/admin/audit", headers=admin)
        assert r.status_code == 405
        assert "GET" in r.headers["allow"]
    assert PASSWORD not in str(events)
