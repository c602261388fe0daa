"""The record cache (domain/records.py) on the one cache type (cache.py): a token's own
user or client row is read once per process, and a change to the user reaches every
process's cache (no stale role or state)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from service.cache import BoundedCache
from service.domain.records import Record, RecordCache
from service.store import users as user_store
from service.store.db import Database
from service.store.users import UserRow
from tests.conftest import PASSWORD, bearer, client_token, login, register, svc_of, two_instances


def test_entries_expire_and_the_cache_is_bounded() -> None:
    now = [100.0]
    cache: BoundedCache[str, str] = BoundedCache(2, ttl=5, clock=lambda: now[0])
    cache.put("a", "1")
    cache.put("b", "2")
    cache.put("c", "3")  # the oldest goes
    assert cache.get("a") is None and cache.get("c") == "3" and len(cache) == 2
    now[0] += 5.1
    assert cache.get("c") is None


async def test_a_row_view_is_made_once_per_row_object(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[UserRow] = []
    rows = {"u_1": UserRow("u_1", "ann", "hash", "user", False, 1, 1)}

    async def stored(_db: Any, *, user_id: str) -> UserRow | None:
        return rows.get(user_id)

    monkeypatch.setattr(user_store, "get_user", stored)

    def view_of(row: UserRow) -> str:
        made.append(row)
        return f"{row.username}:{row.role}"

    monkeypatch.setattr("service.domain.records.UserPublic.from_row", view_of)
    views = RecordCache(max_entries=3)

    async def view(user_id: str) -> Any:
        found = await views.user_view(db, user_id)
        return found[1] if found else None

    row = rows["u_1"]
    assert await view("u_1") == "ann:user" and await view("u_1") == "ann:user"
    assert made == [row]
    # a changed record is a new row object, even with equal fields: a new view
    promoted = rows["u_1"] = UserRow("u_1", "ann", "hash", "admin", False, 1, 2)
    views.drop(Record("user", "u_1"))
    assert await view("u_1") == "ann:admin"
    twin = rows["u_1"] = UserRow("u_1", "ann", "hash", "user", False, 1, 1)
    views.drop_signalled(Record("user", "u_1").signal_value())
    assert twin == row and await view("u_1") == "ann:user" and len(made) == 3
    assert made[1] is promoted
    for n in range(10):  # bounded
        rows[f"u_{n}"] = UserRow(f"u_{n}", "x", "h", "user", False, 1, 1)
        await view(f"u_{n}")
        assert len(views) <= 3


async def test_the_profile_is_read_once_per_process(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    original = user_store.get_user

    async def counting(db: Any, *, user_id: str, **kwargs: Any) -> Any:
        if isinstance(db, Database):  # a read outside a transaction: the request path's
            reads.append(user_id)
        return await original(db, user_id=user_id, **kwargs)

    monkeypatch.setattr(user_store, "get_user", counting)
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
    assert records.get(Record("client", created.client_id)) is not None
