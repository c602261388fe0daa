"""SQLite statements take one hop to aiosqlite's thread each, and a transaction ends in
one more; a read ends in none. Failures still roll back, results are the same."""

from __future__ import annotations

from typing import Any

import aiosqlite
import pytest
from sqlalchemy import func, select

from service.store import notes as note_store
from service.store.db import Database
from service.store.tables import notes


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    count = [0]
    original = aiosqlite.Connection._execute

    async def counting(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return count


async def test_a_read_is_one_hop_and_a_note_create_one_per_statement(
    db: Database, hops: list[int]
) -> None:
    async with db.begin() as conn:  # the pool's connection is opened outside the count
        await conn.execute(select(1))
    hops[0] = 0
    async with db.begin() as conn:
        note = await note_store.create_note(conn, owner_id="o", title="t", body="", tags=["x"])
    # BEGIN IMMEDIATE, INSERT note, DELETE tags, INSERT tags, COMMIT.
    assert hops[0] == 5
    hops[0] = 0
    async with db.read() as conn:
        assert await note_store.get_note(conn, note_id=note.id, owner_id="o") == note
    assert hops[0] == 1


async def test_a_failed_transaction_is_rolled_back(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.begin() as conn:
            await note_store.create_note(conn, owner_id="o", title="t", body="", tags=["x"])
            raise RuntimeError
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(notes))).scalar() == 0
    async with db.begin() as conn:  # the write lock was released
        await note_store.create_note(conn, owner_id="o", title="t", body="", tags=[])


async def test_rowcount_and_many_rows_come_back(db: Database) -> None:
    async with db.begin() as conn:
        for i in range(30):
            await note_store.create_note(conn, owner_id="o", title=f"{i}", body="", tags=[])
        result = await conn.execute(notes.update().where(notes.c.owner_id == "o").values(body="b"))
        assert result.rowcount == 30
    async with db.read() as conn:
        stream = await conn.stream(select(notes.c.id))
        streamed = [row async for row in stream]
    rows = await note_store.read_notes(db, owner_id="o", limit=25, after=None, tag=None)
    assert len(rows) == 25 and all(r.body == "b" for r in rows)
    assert len(streamed) == 30
