"""Admin client management: the list (never a secret), disabling and narrowing (the
client's tokens refused on every replica), secret rotation (the old secret stops at
once); bad input and non-admin callers change nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from quart import Quart
from sqlalchemy import select

from service.config import Settings
from service.store.tables import audit, clients
from tests.conftest import bearer, client_token, make_admin, svc_of, two_instances, user_token


async def grant(
    client: httpx.AsyncClient, client_id: str, secret: str, **extra: str
) -> httpx.Response:
    return await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            **extra,
        },
    )


async def notes_status(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/v1/notes", headers=bearer(token))).status_code


async def client_rows(app: Quart) -> list[Any]:
    async with svc_of(app).db.read() as conn:
        return list(await conn.execute(select(clients).order_by(clients.c.client_id)))


async def audit_events(app: Quart) -> list[tuple[str, str | None]]:
    async with svc_of(app).db.read() as conn:
        return [(r.event, r.target) for r in await conn.execute(select(audit).order_by(audit.c.id))]


async def test_list_clients_paged_never_a_secret(app: Quart, client: httpx.AsyncClient) -> None:
    admin = bearer(await make_admin(app, client))
    made = [await client_token(app, client, ["notes:read"], name=f"robot{i}") for i in range(3)]
    page = (await client.get("/v1/admin/clients?limit=2", headers=admin)).json()
    assert [c["name"] for c in page["items"]] == ["robot2", "robot1"]
    assert set(page["items"][0]) == {"client_id", "name", "scopes", "disabled", "created_at"}
    rest = (
        await client.get(f"/v1/admin/clients?limit=2&cursor={page['next_cursor']}", headers=admin)
    ).json()
    assert [c["name"] for c in rest["items"]] == ["robot0"] and rest["next_cursor"] is None
    text = (await client.get("/v1/admin/clients?limit=100", headers=admin)).text
    for created, _token in made:
        assert created.client_secret not in text
    assert "secret" not in text


async def test_disabling_a_client_refuses_its_tokens_on_every_replica(settings: Settings) -> None:
    async with two_instances(settings) as (a, b, ca, cb):
        admin = bearer(await make_admin(a, ca))
        created, token = await client_token(a, ca, ["notes:read", "notes:write"])
        assert await notes_status(cb, token) == 200  # b has cached the client row
        r = await ca.patch(
            f"/v1/admin/clients/{created.client_id}", json={"disabled": True}, headers=admin
        )
        assert r.status_code == 200 and r.json()["disabled"] is True
        await svc_of(b).bus.poll()  # b's next poll (every 0.5 s)
        for c in (ca, cb):
            assert await notes_status(c, token) == 401
            r = await grant(c, created.client_id, created.client_secret)
            assert r.json()["error"] == "invalid_client"
        r = await ca.patch(
            f"/v1/admin/clients/{created.client_id}", json={"disabled": False}, headers=admin
        )
        assert r.status_code == 200
        await svc_of(b).bus.poll()
        assert (await grant(cb, created.client_id, created.client_secret)).status_code == 200
        assert [e for e, t in await audit_events(a) if t == created.client_id] == [
            "client.created",
            "client.disabled",
            "client.enabled",
        ]


async def test_narrowing_a_clients_scopes_revokes_the_wider_tokens(settings: Settings) -> None:
    async with two_instances(settings) as (a, b, ca, cb):
        admin = bearer(await make_admin(a, ca))
        created, wide = await client_token(a, ca, ["notes:read", "notes:write"])
        r = await ca.patch(
            f"/v1/admin/clients/{created.client_id}", json={"scopes": ["notes:read"]}, headers=admin
        )
        assert r.status_code == 200 and r.json()["scopes"] == ["notes:read"]
        await svc_of(b).bus.poll()
        for c in (ca, cb):
            assert await notes_status(c, wide) == 401
        r = await grant(cb, created.client_id, created.client_secret)
        assert r.status_code == 200 and r.json()["scope"] == "notes:read"
        assert await notes_status(cb, r.json()["access_token"]) == 200
        r = await grant(cb, created.client_id, created.client_secret, scope="notes:write")
        assert r.json()["error"] == "invalid_scope"


async def test_rotating_a_secret_stops_the_old_one_at_once(settings: Settings) -> None:
    async with two_instances(settings) as (a, b, ca, cb):
        admin = bearer(await make_admin(a, ca))
        created, _token = await client_token(a, ca, ["notes:read"])
        assert (await grant(cb, created.client_id, created.client_secret)).status_code == 200
        r = await ca.post(f"/v1/admin/clients/{created.client_id}/secret", headers=admin)
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        new = r.json()["client_secret"]
        assert r.json()["client_id"] == created.client_id and new != created.client_secret
        await svc_of(b).bus.poll()
        for c in (ca, cb):
            assert (await grant(c, created.client_id, created.client_secret)).status_code in (
                400,
                401,
            )
            assert (await grant(c, created.client_id, new)).status_code == 200
        listed = (await ca.get("/v1/admin/clients", headers=admin)).text
        assert new not in listed
        trail = await audit_events(a)
        assert ("client.secret_rotated", created.client_id) in trail
        assert new not in str(trail)


async def test_bad_input_and_non_admins_change_nothing(
    app: Quart, client: httpx.AsyncClient
) -> None:
    admin = bearer(await make_admin(app, client))
    created, token = await client_token(app, client, ["notes:read"])
    user = bearer(await user_token(client, "plain"))
    before, trail = await client_rows(app), await audit_events(app)
    cid = created.client_id
    for who in (user, bearer(token)):
        for method, url, body in (
            ("GET", "/v1/admin/clients", None),
            ("PATCH", f"/v1/admin/clients/{cid}", {"disabled": True}),
            ("POST", f"/v1/admin/clients/{cid}/secret", None),
        ):
            r = await client.request(method, url, json=body, headers=who)
            assert r.status_code == 403, (method, url, r.text)
    for url in ("/v1/admin/clients/c_nope", "/v1/admin/clients/" + "x" * 300):
        assert (await client.patch(url, json={"disabled": True}, headers=admin)).status_code == 404
        assert (await client.post(url + "/secret", headers=admin)).status_code == 404
    bodies: list[dict[str, object]] = [
        {},
        {"scopes": []},
        {"scopes": ["root"]},
        {"scopes": ["notes:read", "notes:read"]},
        {"disabled": "yes"},
        {"disabled": True, "secret_hash": "x"},
        {"disabled": None},
    ]
    for patch in bodies:
        r = await client.patch(f"/v1/admin/clients/{cid}", json=patch, headers=admin)
        assert r.status_code == 422, (patch, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert await client_rows(app) == before
    assert await audit_events(app) == trail
    assert await notes_status(client, token) == 200


async def test_a_client_disabled_while_grants_run_keeps_no_working_token(
    app: Quart, client: httpx.AsyncClient
) -> None:
    admin = bearer(await make_admin(app, client))
    for _round in range(3):
        created, _token = await client_token(app, client, ["notes:read"])
        answers = await asyncio.gather(
            *[grant(client, created.client_id, created.client_secret) for _ in range(8)],
            client.patch(
                f"/v1/admin/clients/{created.client_id}", json={"disabled": True}, headers=admin
            ),
            *[grant(client, created.client_id, created.client_secret) for _ in range(8)],
        )
        assert answers[8].status_code == 200
        tokens = [r.json()["access_token"] for r in answers if "access_token" in r.text]
        tokens.append(_token)
        for token in tokens:
            assert await notes_status(client, token) == 401
        assert (await grant(client, created.client_id, created.client_secret)).status_code == 400
