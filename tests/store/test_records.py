"""The record cache: a token's own user or client row is read once per process, and a
change to the user reaches every process's cache (no stale role or state)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from service.store import users as user_store
from service.store.records import RecordCache, RowViews
from service.store.users import UserRow
from tests.conftest import PASSWORD, bearer, client_token, login, register, svc_of, two_instances


def test_entries_expire_and_the_cache_is_bounded() -> None:
    now = [100.0]
    cache: RecordCache[str] = RecordCache(ttl=5, max_entries=2, clock=lambda: now[0])
    cache.put("a", "1")
    cache.put("b", "2")
    cache.put("c", "3")  # the oldest goes
    assert cache.get("a") is None and cache.get("c") == "3" and len(cache) == 2
    now[0] += 5.1
    assert cache.get("c") is None


def test_a_row_view_is_made_once_per_row_object() -> None:
    made: list[UserRow] = []

    def make(row: UserRow) -> str:
        made.append(row)
        return f"{row.username}:{row.role}"

    views: RowViews[UserRow, str] = RowViews(max_entries=3)
    row = UserRow("u_1", "ann", "hash", "user", False, 1, 1)
    assert views.view(row, make) == "ann:user" and views.view(row, make) == "ann:user"
    assert made == [row]
    # a changed record is a new row object, even with equal fields: a new view
    promoted = UserRow("u_1", "ann", "hash", "admin", False, 1, 2)
    assert views.view(promoted, make) == "ann:admin"
    twin = UserRow("u_1", "ann", "hash", "user", False, 1, 1)
    assert twin == row and views.view(twin, make) == "ann:user" and len(made) == 3
    for n in range(10):  # bounded
        views.view(UserRow(f"u_{n}", "x", "h", "user", False, 1, 1), make)
        assert len(views) <= 3


async def test_the_profile_is_read_once_per_process(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    original = user_store.read_user

    async def counting(db: Any, *, user_id: str) -> Any:
        reads.append(user_id)
        return await original(db, user_id=user_id)

    monkeypatch.setattr(user_store, "read_user", counting)
    async with two_instances(settings) as (_, _, ca, _):
        await register(ca, "reader")
        token = bearer((await login(ca, "reader"))["access_token"])
        reads.clear()
        for _ in range(5):
            assert (await ca.get("/v1/users/me", headers=token)).status_code == 200
        assert len(reads) == 1


async def test_a_role_change_reaches_every_process_cache(settings: Any) -> None:
    async with two_instances(settings) as (a, _, ca, cb):
        from service.domain import identity

        user = await identity.register(svc_of(a), username="climber", password=PASSWORD)
        # another enabled admin, so that "climber" may step down again (the last may not)
        await identity.register(svc_of(a), username="anchor", password=PASSWORD, role="admin")
        await identity.update_user(
            svc_of(a), user_id=user.id, changes={"role": "admin"}, actor="test", ip="127.0.0.1"
        )
        token = bearer((await login(ca, "climber"))["access_token"])
        assert (await cb.get("/v1/users/me", headers=token)).json()["role"] == "admin"  # cached
        await identity.update_user(
            svc_of(a), user_id=user.id, changes={"role": "user"}, actor="test", ip="127.0.0.1"
        )
        token = bearer((await login(ca, "climber"))["access_token"])
        deadline = time.monotonic() + 3  # b learns of it within a poll
        while (await cb.get("/v1/users/me", headers=token)).json()["role"] != "user":
            assert time.monotonic() < deadline, "b kept serving the cached admin role"
            await asyncio.sleep(0.05)


async def test_client_credentials_read_the_client_once(app: Any, client: Any) -> None:
    created, _ = await client_token(app, client, ["notes:read"])
    records = svc_of(app).records
    assert records.get(f"client:{created.client_id}") is not None
