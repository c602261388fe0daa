"""A keyset page searches the index from its cursor: its cost does not grow with depth."""

from __future__ import annotations

import pytest

from service.store import notes as note_store
from service.store.db import Database


@pytest.mark.parametrize("tag", [None, "x"])
async def test_a_later_page_searches_the_index_from_the_cursor(
    db: Database, tag: str | None
) -> None:
    async with db.begin() as conn:
        note = await note_store.create_note(conn, owner_id="o", title="t", body="", tags=["x"])
    assert db.reader is not None  # the request path reads pages through it
    compiled = db.reader.compiled(note_store._PAGES[(tag is not None, True)])
    assert compiled is not None
    params = {"owner_id": "o", "tag": tag, "after_created": note.created_us}
    params |= {"after_id": note.id, "limit": 20}
    statement = compiled.sql
    parameters = tuple(params.get(name, default) for name, default, _ in compiled.binds)
    [row] = await note_store.list_notes(
        db, owner_id="o", limit=20, after=(note.created_us + 1, note.id), tag=tag
    )
    assert row == note
    async with db.read() as conn:
        plan = [
            row[-1]
            for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        ]
    # Without the bound SQLite uses only the owner (and tag) columns of the index.
    assert any("created_us<" in step for step in plan), plan
