"""Store-layer micro-benchmark: time N calls of the hot store functions against a temporary
SQLite database in-process, and count the hand-offs to aiosqlite's thread per call.

Run: `.venv/bin/python -m bench.store_micro [--n 2000] [--notes 100000]`."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite

from service.store import notes as notes_store
from service.store import users as users_store
from service.store.db import Database
from service.store.migrations import migrate
from service.store.tables import notes

_HOPS = [0]
_original_execute = aiosqlite.Connection._execute


async def _counting_execute(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
    _HOPS[0] += 1
    return await _original_execute(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]


async def _measure(name: str, n: int, call: Callable[[], Awaitable[object]]) -> None:
    for _ in range(min(n, 50)):
        await call()
    _HOPS[0] = 0
    start = time.perf_counter()
    for _ in range(n):
        await call()
    elapsed = time.perf_counter() - start
    print(f"{name:<24} {elapsed / n * 1e6:9.1f} µs/call {_HOPS[0] / n:6.1f} hops/call")


async def run(n: int, note_count: int) -> None:
    aiosqlite.Connection._execute = _counting_execute  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'micro.db'}")
        await migrate(db)
        async with db.begin() as conn:
            user = await users_store.create_user(
                conn, username="micro", password_hash=os.urandom(8).hex(), role="user"
            )
            base = 1_700_000_000_000_000
            rows = [
                {
                    "id": f"{i:08d}-0000-0000-0000-000000000000",
                    "owner_id": user.id,
                    "title": "t",
                    "body": "b",
                    "tags": "[]",
                    "created_us": base + i,
                    "updated_us": base + i,
                    "version": 1,
                }
                for i in range(note_count)
            ]
            await conn.execute(notes.insert(), rows)
            note = await notes_store.create_note(
                conn, owner_id=user.id, title="t", body="b", tags=["a"]
            )
        middle = note_count // 2
        after = (base + middle, f"{middle:08d}-0000-0000-0000-000000000000")

        async def get_user_engine() -> object:
            async with db.read() as conn:
                return await users_store.get_user(conn, user_id=user.id)

        async def get_note_engine() -> object:
            async with db.read() as conn:
                return await notes_store.get_note(conn, note_id=note.id, owner_id=user.id)

        async def get_user() -> object:
            return await users_store.get_user(db, user_id=user.id)

        async def get_note() -> object:
            return await notes_store.get_note(db, note_id=note.id, owner_id=user.id)

        async def first_page() -> object:
            return await notes_store.list_notes(
                db, owner_id=user.id, limit=20, after=None, tag=None
            )

        async def middle_page() -> object:
            return await notes_store.list_notes(
                db, owner_id=user.id, limit=20, after=after, tag=None
            )

        async def create_note() -> object:
            async with db.begin() as conn:
                return await notes_store.create_note(
                    conn, owner_id=user.id, title="t", body="b", tags=["a"]
                )

        print(f"SQLite, {note_count} notes, {n} calls each")
        await _measure("get_user (engine)", n, get_user_engine)
        await _measure("get_note (engine)", n, get_note_engine)
        await _measure("get_user(db) (reader)", n, get_user)
        await _measure("get_note(db) (reader)", n, get_note)
        await _measure("list_notes(db) first page", n, first_page)
        await _measure("list_notes(db) middle page", max(n // 10, 1), middle_page)
        await _measure("create_note (1 tag)", max(n // 4, 1), create_note)
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--notes", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(run(args.n, args.notes))


if __name__ == "__main__":
    main()
