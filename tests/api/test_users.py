"""The caller's profile, and a valid token whose user or client is gone (inactive
principal: 401 invalid_token, counted and logged as such)."""

from __future__ import annotations

import time

import httpx
from quart import Quart
from sqlalchemy import delete, update

from service.domain.records import RECORD_TTL_SECONDS
from service.store.tables import clients, users
from tests.conftest import PASSWORD, bearer, client_token, register, svc_of, user_token


def inactive_count(app: Quart) -> float:
    body, _ = svc_of(app).metrics.render()
    text = body.decode() if isinstance(body, bytes) else str(body)
    for line in text.splitlines():
        if line.startswith('portcullis_auth_failures_total{reason="inactive_principal"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_profile_of_a_user_and_of_a_client(app: Quart, client: httpx.AsyncClient) -> None:
    token = await user_token(client, "profiled")
    me = await client.get("/v1/users/me", headers=bearer(token))
    assert me.status_code == 200 and me.json()["username"] == "profiled"
    created, robot = await client_token(app, client, ["notes:read"])
    it = await client.get("/v1/users/me", headers=bearer(robot))
    assert it.status_code == 200
    assert it.json() == {"client_id": created.client_id, "name": "robot", "scopes": ["notes:read"]}


def outlive_the_record_cache(app: Quart) -> None:
    """Move the record cache's clock past its TTL: what a change made outside the service
    (no `principal` signal) waits for (service/domain/records.py)."""
    records = svc_of(app).records
    records.clock = lambda: time.monotonic() + RECORD_TTL_SECONDS + 1


async def test_a_token_whose_client_is_disabled_is_an_inactive_principal(
    app: Quart, client: httpx.AsyncClient
) -> None:
    created, robot = await client_token(app, client, ["notes:read"])
    async with svc_of(app).db.begin() as conn:
        await conn.execute(
            update(clients).where(clients.c.client_id == created.client_id).values(disabled=True)
        )
    outlive_the_record_cache(app)  # a change made by hand, outside the service
    before = inactive_count(app)
    r = await client.get("/v1/users/me", headers=bearer(robot))
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert r.headers["content-type"] == "application/problem+json"
    assert inactive_count(app) == before + 1


async def test_a_token_whose_user_is_deleted_is_an_inactive_principal(
    app: Quart, client: httpx.AsyncClient
) -> None:
    user_id = await register(client, "vanishing")
    token = (
        await client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": "vanishing", "password": PASSWORD},
        )
    ).json()["access_token"]
    async with svc_of(app).db.begin() as conn:
        await conn.execute(delete(users).where(users.c.id == user_id))
    outlive_the_record_cache(app)  # a change made by hand, outside the service
    before = inactive_count(app)
    r = await client.get("/v1/users/me", headers=bearer(token))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert inactive_count(app) == before + 1
