"""A user disabled or demoted while their login is in flight gets no working token.

The password grant reads the user, spends ~25 ms in Argon2, then creates the session.
These tests hold the login inside the hasher (an Event, not a sleep) or inside the
session-creating transaction, and change the user through the admin API meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from quart import Quart
from sqlalchemy import text

from service.domain import identity
from service.store import sessions
from tests.conftest import PASSWORD, bearer, make_admin, needs_pg, register, svc_of

Paused = Callable[[], Awaitable[httpx.Response]]


@contextlib.asynccontextmanager
async def login_paused_in_argon2(
    app: Quart, monkeypatch: pytest.MonkeyPatch, client: httpx.AsyncClient, username: str
) -> AsyncIterator[Paused]:
    """Start a password login and hold it right after its password was verified;
    the yielded function lets it finish and returns its answer."""
    svc = svc_of(app)
    verified, release = asyncio.Event(), asyncio.Event()
    real_verify = svc.passwords.verify_or_dummy

    async def held_verify(stored: str | None, password: str) -> bool:
        ok = await real_verify(stored, password)
        verified.set()
        await release.wait()
        return ok

    monkeypatch.setattr(svc.passwords, "verify_or_dummy", held_verify)
    task = asyncio.create_task(
        client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": PASSWORD},
        )
    )
    await asyncio.wait_for(verified.wait(), 10)

    async def finish() -> httpx.Response:
        release.set()
        return await asyncio.wait_for(task, 10)

    try:
        yield finish
    finally:
        release.set()
        with contextlib.suppress(Exception):
            await task


async def test_disabled_during_password_check_gets_no_token(
    app: Quart, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await make_admin(app, client)
    victim = await register(client, "leaver")
    async with login_paused_in_argon2(app, monkeypatch, client, "leaver") as finish:
        r = await client.patch(
            f"/v1/admin/users/{victim}", json={"disabled": True}, headers=bearer(admin)
        )
        assert r.status_code == 200 and r.json()["disabled"] is True
        answer = await finish()
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_grant"


async def test_demoted_during_password_check_gets_no_admin_scope(
    app: Quart, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await make_admin(app, client)
    boss = await identity.register(svc_of(app), username="boss", password=PASSWORD, role="admin")
    async with login_paused_in_argon2(app, monkeypatch, client, "boss") as finish:
        r = await client.patch(
            f"/v1/admin/users/{boss.id}", json={"role": "user"}, headers=bearer(admin)
        )
        assert r.status_code == 200 and r.json()["role"] == "user"
        answer = await finish()
    assert answer.status_code == 200, answer.text
    assert "admin" not in answer.json()["scope"].split()
    token = answer.json()["access_token"]
    assert "admin" not in svc_of(app).tokens.verify(token).scopes
    r = await client.get("/v1/admin/users", headers=bearer(token))
    assert r.status_code == 403
    # the refresh token of that session cannot win the scope back either
    r = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": answer.json()["refresh_token"],
            "scope": "admin",
        },
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


async def _waiting_on_a_lock(app: Quart) -> bool:
    async with svc_of(app).db.read() as conn:
        waiting = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


@needs_pg
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_demotion_racing_session_creation_revokes_the_new_session(
    app: Quart, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order, on PostgreSQL: the login's transaction is creating the session
    when the demotion arrives. The demotion must wait for it, then revoke it."""
    admin = await make_admin(app, client)
    boss = await identity.register(svc_of(app), username="boss2", password=PASSWORD, role="admin")
    inside, release = asyncio.Event(), asyncio.Event()
    real_create = sessions.create_session

    async def held_create(conn: Any, **kwargs: Any) -> None:
        await real_create(conn, **kwargs)
        inside.set()
        await release.wait()

    monkeypatch.setattr(sessions, "create_session", held_create)
    login = asyncio.create_task(
        client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": "boss2", "password": PASSWORD},
        )
    )
    await asyncio.wait_for(inside.wait(), 10)
    demote = asyncio.create_task(
        client.patch(f"/v1/admin/users/{boss.id}", json={"role": "user"}, headers=bearer(admin))
    )
    # Let the login commit once the demotion is either done or waiting for the user row.
    for _ in range(500):
        if demote.done() or await _waiting_on_a_lock(app):
            break
        await asyncio.sleep(0.01)
    release.set()
    answer = await asyncio.wait_for(login, 10)
    assert (await asyncio.wait_for(demote, 10)).status_code == 200
    assert answer.status_code == 200, answer.text
    r = await client.get("/v1/admin/users", headers=bearer(answer.json()["access_token"]))
    assert r.status_code == 401, "a demoted admin kept a working admin token"
