"""The one-hop SQLite reader (store/sqlite_reader.py) and the turn SQLite writers of one
process take (Database.begin): the same rows and errors as through the engine."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from sqlalchemy import Select, bindparam, select, text
from sqlalchemy.exc import DBAPIError

from service.store import db as db_module
from service.store import notes as note_store
from service.store import users as user_store
from service.store.db import Database
from service.store.tables import notes, users


async def test_rows_match_the_engine_with_sqlalchemy_conversions(db: Database) -> None:
    async with db.begin() as conn:
        user = await user_store.create_user(conn, username="u1", password_hash="-", role="user")
        await user_store.update_user(conn, user_id=user.id, changes={"disabled": True})
    statement = select(users).where(users.c.id == bindparam("user_id"))
    [fast] = await db.fetch(statement, {"user_id": user.id})
    async with db.read() as conn:
        [slow] = (await conn.execute(statement, {"user_id": user.id})).all()
    assert tuple(fast) == tuple(slow)
    assert fast.disabled is True  # SQLite stores 1: SQLAlchemy's Boolean conversion ran
    assert fast._fields == tuple(slow._fields)


async def test_a_read_sees_the_write_committed_just_before(db: Database) -> None:
    for i in range(20):
        async with db.begin() as conn:
            note = await note_store.create_note(conn, owner_id="o", title=f"{i}", body="", tags=[])
        assert await note_store.get_note(db, note_id=note.id, owner_id="o") == note
        async with db.begin() as conn:
            await conn.execute(notes.delete().where(notes.c.id == note.id))
        assert await note_store.get_note(db, note_id=note.id, owner_id="o") is None


async def test_the_reader_connection_cannot_write(db: Database) -> None:
    assert db.reader is not None
    await db.fetch(select(notes.c.id), {})
    conn = db.reader._conn
    assert conn is not None
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await conn.execute("DELETE FROM notes")


async def test_a_driver_error_is_a_dbapi_error_and_the_reader_recovers(db: Database) -> None:
    """DBAPIError is what the API answers 503 for; the next read works again."""
    async with db.begin() as conn:
        await conn.execute(text("ALTER TABLE notes RENAME TO notes_away"))
    with pytest.raises(DBAPIError):
        await note_store.get_note(db, note_id="x", owner_id="o")
    async with db.begin() as conn:
        await conn.execute(text("ALTER TABLE notes_away RENAME TO notes"))
    assert await note_store.get_note(db, note_id="x", owner_id="o") is None


async def test_a_missing_parameter_is_refused_not_read_as_null(db: Database) -> None:
    with pytest.raises(TypeError, match="owner_id"):
        await db.fetch(note_store._GET_NOTE, {"note_id": "x"})


async def test_expanding_lists_go_through_the_engine(db: Database) -> None:
    async with db.begin() as conn:
        a = await note_store.create_note(conn, owner_id="o", title="a", body="", tags=[])
        b = await note_store.create_note(conn, owner_id="o", title="b", body="", tags=[])
    assert db.reader is not None
    statement = select(notes.c.title).where(notes.c.id.in_(bindparam("ids", expanding=True)))
    assert db.reader.compiled(statement) is None
    rows = await db.fetch(statement.order_by(notes.c.title), {"ids": [a.id, b.id]})
    assert [r.title for r in rows] == ["a", "b"]


async def test_concurrent_first_reads_open_one_connection_and_close_reopens(
    db: Database,
) -> None:
    assert db.reader is not None
    await asyncio.gather(*[db.fetch(select(notes.c.id), {}) for _ in range(20)])
    first = db.reader._conn
    assert first is not None
    await db.reader.close()
    assert db.reader._conn is None
    await db.fetch(select(notes.c.id), {})
    assert db.reader._conn is not None and db.reader._conn is not first


async def test_writers_of_one_process_take_turns_in_arrival_order(db: Database) -> None:
    """Left to SQLite's busy handler, a burst of writers finished in no order and some
    waited seconds; now they queue first come, first served, and none fails."""
    finished: list[int] = []

    async def write(i: int) -> None:
        async with db.begin() as conn:
            await note_store.create_note(conn, owner_id="o", title=f"{i}", body="", tags=["t"])
        finished.append(i)

    tasks = []
    for i in range(40):
        tasks.append(asyncio.create_task(write(i)))
        await asyncio.sleep(0)  # each starts waiting before the next arrives
    await asyncio.gather(*tasks)
    assert finished == list(range(40))


async def test_a_writer_waiting_too_long_gets_a_timeout(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TimeoutError is answered 503 with Retry-After, like a busy database."""
    monkeypatch.setattr(db_module, "SQLITE_WRITE_WAIT_SECONDS", 0.2)
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with db.begin():
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await held.wait()
    with pytest.raises(TimeoutError):
        async with db.begin():
            pass
    release.set()
    await holder
    async with db.begin():  # the turn is free again
        pass


async def test_every_store_statement_reads_as_through_the_engine(db: Database) -> None:
    """The reader compiles through SQLAlchemy's public compiler attributes: for each hot
    statement of the store, its rows (values, conversions, column names) are exactly the
    engine's, so an upgrade that changes what those attributes mean fails here."""
    async with db.begin() as conn:
        user = await user_store.create_user(conn, username="u1", password_hash="-", role="user")
        await user_store.update_user(conn, user_id=user.id, changes={"disabled": True})
        await user_store.create_client(
            conn, client_id="c1", name="robot", secret_hash="h", scopes="notes:read"
        )
        for i in range(3):
            note = await note_store.create_note(
                conn, owner_id="o", title=f"t{i}", body="b", tags=["x", "y"]
            )
    after: dict[str, Any] = {"after_created": note.created_us + 1, "after_id": note.id}
    cases: list[tuple[Select[Any], dict[str, Any]]] = [
        (user_store._GET_USER, {"user_id": user.id}),
        (user_store._GET_USER_BY_NAME, {"username": "u1"}),
        (user_store._GET_CLIENT, {"client_id": "c1"}),
        (note_store._GET_NOTE, {"note_id": note.id, "owner_id": "o"}),
        (note_store._PAGES[(False, False)], {"owner_id": "o", "limit": 2}),
        (note_store._PAGES[(False, True)], {"owner_id": "o", "limit": 5, **after}),
        (note_store._PAGES[(True, False)], {"owner_id": "o", "tag": "x", "limit": 2}),
        (note_store._PAGES[(True, True)], {"owner_id": "o", "tag": "y", "limit": 5, **after}),
    ]
    assert db.reader is not None
    for statement, params in cases:
        assert db.reader.compiled(statement) is not None  # the reader runs it
        fast = await db.fetch(statement, params)
        async with db.read() as conn:
            slow = (await conn.execute(statement, params)).all()
        assert fast, statement
        assert [tuple(r) for r in fast] == [tuple(r) for r in slow]
        assert [r._fields for r in fast] == [tuple(r._fields) for r in slow]
