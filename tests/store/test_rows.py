"""Store functions return typed rows, and the owner is part of every note query."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from service.store import notes as note_store
from service.store.db import Database, typed_row
from service.store.notes import NoteRow
from service.store.tables import notes


async def test_a_note_is_a_typed_row_only_its_owner_reads(db: Database) -> None:
    async with db.begin() as conn:
        created = await note_store.create_note(
            conn, owner_id="alice", title="t", body="b", tags=["x", "y"]
        )
    async with db.read() as conn:
        mine = await note_store.get_note(conn, note_id=created.id, owner_id="alice")
        theirs = await note_store.get_note(conn, note_id=created.id, owner_id="bob")
    assert isinstance(mine, NoteRow) and mine == created
    assert mine.tags == ["x", "y"] and mine.version == 1
    assert theirs is None


async def test_keyset_pages_neither_repeat_nor_skip(db: Database) -> None:
    async with db.begin() as conn:
        ids = {
            (await note_store.create_note(conn, owner_id="o", title=f"n{i}", body="", tags=[])).id
            for i in range(5)
        }
    seen: list[str] = []
    after: tuple[int, str] | None = None
    while True:
        rows = await note_store.list_notes(db, owner_id="o", limit=2, after=after, tag=None)
        seen += [r.id for r in rows]
        if len(rows) < 2:
            break
        after = (rows[-1].created_us, rows[-1].id)
    assert len(seen) == len(set(seen)) == 5 and set(seen) == ids


@dataclass(frozen=True, slots=True)
class _Title:
    id: str
    title: str


async def test_typed_row_reads_only_the_fields_it_names(db: Database) -> None:
    async with db.begin() as conn:
        created = await note_store.create_note(conn, owner_id="o", title="t", body="b", tags=[])
    async with db.read() as conn:
        row = (await conn.execute(select(notes))).one()
    assert typed_row(_Title, row) == _Title(id=created.id, title="t")
