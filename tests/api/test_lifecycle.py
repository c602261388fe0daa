"""A user's own account: `PUT /v1/users/me/password`, `DELETE /v1/users/me`; and the
last enabled admin (409), tried from the attacker's side: wrong and weak passwords,
other people's tokens, concurrent requests."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from quart import Quart
from sqlalchemy import func, select

from service.config import Settings
from service.store.tables import audit, idempotency, login_sessions, notes, users
from tests.conftest import (
    PASSWORD,
    bearer,
    client_token,
    login,
    make_admin,
    register,
    svc_of,
    two_instances,
)

NEW = "a-different correct horse 42"


async def count(app: Quart, table: Any, *where: Any) -> int:
    async with svc_of(app).db.read() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
        )


async def events(app: Quart, event: str) -> list[Any]:
    async with svc_of(app).db.read() as conn:
        return list(await conn.execute(select(audit).where(audit.c.event == event)))


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": token}
    )


async def me(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/v1/notes", headers=bearer(token))).status_code


async def change(client: httpx.AsyncClient, token: str, current: str, new: str) -> httpx.Response:
    return await client.put(
        "/v1/users/me/password",
        json={"current_password": current, "new_password": new},
        headers=bearer(token),
    )


async def test_password_change_revokes_other_sessions_and_keeps_the_callers(
    settings: Settings,
) -> None:
    async with two_instances(settings) as (a, b, ca, cb):
        user_id = await register(ca, "alice")
        mine, other = await login(ca, "alice"), await login(cb, "alice")
        assert await me(cb, other["access_token"]) == 200
        r = await change(ca, mine["access_token"], PASSWORD, NEW)
        assert r.status_code == 204, r.text
        await svc_of(b).bus.poll()  # the other replica's next poll (every 0.5 s)
        for c in (ca, cb):
            assert await me(c, other["access_token"]) == 401
            assert await me(c, mine["access_token"]) == 200
        assert (await refresh(cb, other["refresh_token"])).json()["error"] == "invalid_grant"
        assert (await refresh(ca, mine["refresh_token"])).status_code == 200
        bad = await ca.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        )
        assert bad.status_code == 400
        await login(ca, "alice", NEW)
        (event,) = await events(a, "user.password_changed")
        assert (event.actor, event.target) == (user_id, user_id)


async def test_a_wrong_current_password_is_403_changes_nothing_and_spends_the_login_budget(
    app: Quart, client: httpx.AsyncClient
) -> None:
    await register(client, "bob")
    tokens = await login(client, "bob")
    for _ in range(5):  # the pair budget of PORTCULLIS_RATE_LIMIT_LOGIN (5/minute)
        r = await change(client, tokens["access_token"], "not the password at all", NEW)
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "not the password" not in r.text
    # the budget is spent: the password grant from this address is refused too
    r = await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": "bob", "password": PASSWORD}
    )
    assert r.status_code == 429
    r = await change(client, tokens["access_token"], PASSWORD, NEW)
    assert r.status_code == 429
    assert await me(client, tokens["access_token"]) == 200
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200
    assert await events(app, "user.password_changed") == []
    assert len(await events(app, "auth.login_failed")) == 5


async def test_weak_new_passwords_are_422_and_change_nothing(
    app: Quart, client: httpx.AsyncClient
) -> None:
    await register(client, "carol")
    tokens = await login(client, "carol")
    for new in ("short", "password1234", "carolcarolcarol", "x" * 129, "abcdefghijklmnop"):
        r = await change(client, tokens["access_token"], PASSWORD, new)
        assert r.status_code == 422, (new, r.text)
    for body in (
        {"current_password": PASSWORD},
        {"new_password": NEW},
        {"current_password": PASSWORD, "new_password": NEW, "role": "admin"},
        {"current_password": 1, "new_password": NEW},
    ):
        r = await client.put(
            "/v1/users/me/password", json=body, headers=bearer(tokens["access_token"])
        )
        assert r.status_code == 422, (body, r.text)
    await login(client, "carol")  # the old password still works
    assert await events(app, "user.password_changed") == []


async def test_only_a_users_own_login_may_change_or_delete_it(
    app: Quart, client: httpx.AsyncClient
) -> None:
    _robot, token = await client_token(app, client, ["notes:read", "notes:write"])
    r = await change(client, token, PASSWORD, NEW)
    assert r.status_code == 403
    r = await client.request(
        "DELETE", "/v1/users/me", json={"password": PASSWORD}, headers=bearer(token)
    )
    assert r.status_code == 403
    r = await client.put(
        "/v1/users/me/password", json={"current_password": PASSWORD, "new_password": NEW}
    )
    assert r.status_code == 401
    r = await client.request("DELETE", "/v1/users/me", json={"password": PASSWORD})
    assert r.status_code == 401


async def test_a_password_change_racing_a_refresh_leaves_the_other_session_dead(
    app: Quart, client: httpx.AsyncClient
) -> None:
    await register(client, "dave")
    password = PASSWORD
    for round_ in range(4):
        mine, other = await login(client, "dave", password), await login(client, "dave", password)
        new = f"{NEW} round {round_}"
        changed, refreshed = await asyncio.gather(
            change(client, mine["access_token"], password, new),
            refresh(client, other["refresh_token"]),
        )
        assert changed.status_code == 204, changed.text
        password = new
        if refreshed.status_code == 200:  # refreshed first: what it gave is dead too
            got = refreshed.json()
            assert await me(client, got["access_token"]) == 401
            assert (await refresh(client, got["refresh_token"])).status_code == 400
        assert await me(client, other["access_token"]) == 401
        assert await me(client, mine["access_token"]) == 200


async def test_delete_me_removes_everything_and_refuses_every_token(settings: Settings) -> None:
    async with two_instances(settings) as (a, b, ca, cb):
        user_id = await register(ca, "erin")
        await register(ca, "frank")
        keep = await login(ca, "frank")
        first, second = await login(ca, "erin"), await login(cb, "erin")
        r = await ca.post(
            "/v1/notes",
            json={"title": "secret plans", "body": "the content", "tags": ["x"]},
            headers={**bearer(first["access_token"]), "Idempotency-Key": "k1"},
        )
        assert r.status_code == 201
        await ca.post(
            "/v1/notes",
            json={"title": "frank's", "body": "", "tags": []},
            headers=bearer(keep["access_token"]),
        )
        wrong = await ca.request(
            "DELETE",
            "/v1/users/me",
            json={"password": "not it at all!!"},
            headers=bearer(first["access_token"]),
        )
        assert wrong.status_code == 403
        assert await count(a, users, users.c.id == user_id) == 1
        assert await count(a, notes, notes.c.owner_id == user_id) == 1

        r = await ca.request(
            "DELETE",
            "/v1/users/me",
            json={"password": PASSWORD},
            headers=bearer(first["access_token"]),
        )
        assert r.status_code == 204, r.text
        await svc_of(b).bus.poll()
        for c in (ca, cb):
            for t in (first, second):
                assert await me(c, t["access_token"]) == 401
        for t in (first, second):
            assert (await refresh(ca, t["refresh_token"])).status_code == 400
        assert await count(a, users, users.c.id == user_id) == 0
        assert await count(a, notes, notes.c.owner_id == user_id) == 0
        assert await count(a, idempotency, idempotency.c.owner_id == user_id) == 0
        assert await count(a, login_sessions, login_sessions.c.user_id == user_id) == 0
        assert await count(a, notes) == 1  # frank's note stays
        assert await me(ca, keep["access_token"]) == 200
        (event,) = await events(a, "user.deleted")
        assert (event.actor, event.target) == (user_id, user_id)
        async with svc_of(a).db.read() as conn:
            trail = " ".join(str(tuple(row)) for row in await conn.execute(select(audit)))
        assert "secret plans" not in trail and "the content" not in trail
        # the name is free again; the old tokens stay dead
        await register(ca, "erin")
        assert await me(ca, first["access_token"]) == 401


async def test_the_last_enabled_admin_cannot_remove_itself(
    app: Quart, client: httpx.AsyncClient
) -> None:
    admin = bearer(await make_admin(app, client))
    me_id = (await client.get("/v1/users/me", headers=admin)).json()["id"]
    for change_ in ({"role": "user"}, {"disabled": True}, {"role": "user", "disabled": True}):
        r = await client.patch(f"/v1/admin/users/{me_id}", json=change_, headers=admin)
        assert r.status_code == 409, (change_, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = await client.request("DELETE", "/v1/users/me", json={"password": PASSWORD}, headers=admin)
    assert r.status_code == 409
    page = (await client.get("/v1/admin/users", headers=admin)).json()["items"]
    assert [(u["role"], u["disabled"]) for u in page] == [("admin", False)]
    # with a second enabled admin, the first may step down
    second_id = await register(client, "second")
    r = await client.patch(f"/v1/admin/users/{second_id}", json={"role": "admin"}, headers=admin)
    assert r.status_code == 200
    r = await client.patch(f"/v1/admin/users/{me_id}", json={"role": "user"}, headers=admin)
    assert r.status_code == 200
    # and now "second" is the last one
    other = bearer((await login(client, "second"))["access_token"])
    r = await client.patch(f"/v1/admin/users/{second_id}", json={"disabled": True}, headers=other)
    assert r.status_code == 409


async def test_two_admins_demoting_each_other_at_once_leave_one(
    app: Quart, client: httpx.AsyncClient
) -> None:
    for round_ in range(3):
        a_id = await register(client, f"left{round_}")
        b_id = await register(client, f"right{round_}")
        root = bearer(await make_admin(app, client, f"root{round_}"))
        for uid in (a_id, b_id):
            r = await client.patch(f"/v1/admin/users/{uid}", json={"role": "admin"}, headers=root)
            assert r.status_code == 200
        root_id = (await client.get("/v1/users/me", headers=root)).json()["id"]
        r = await client.patch(f"/v1/admin/users/{root_id}", json={"role": "user"}, headers=root)
        assert r.status_code == 200
        ta = bearer((await login(client, f"left{round_}"))["access_token"])
        tb = bearer((await login(client, f"right{round_}"))["access_token"])
        results = await asyncio.gather(
            client.patch(f"/v1/admin/users/{b_id}", json={"disabled": True}, headers=ta),
            client.patch(f"/v1/admin/users/{a_id}", json={"role": "user"}, headers=tb),
        )
        assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
        enabled_admins = await count(
            app, users, users.c.role == "admin", users.c.disabled.is_(False)
        )
        assert enabled_admins == 1
        # leave no admin behind for the next round's root to count
        survivor = ta if results[0].status_code == 200 else tb
        sid = a_id if survivor is ta else b_id
        async with svc_of(app).db.begin() as conn:
            await conn.execute(users.update().where(users.c.id == sid).values(role="user"))
