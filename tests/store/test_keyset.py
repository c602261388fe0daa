"""A keyset page searches the index from its cursor: its cost does not grow with depth."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from service.store import notes as note_store
from service.store.db import Database


@pytest.mark.parametrize("tag", [None, "x"])
async def test_a_later_page_searches_the_index_from_the_cursor(
    db: Database, tag: str | None
) -> None:
    async with db.begin() as conn:
        note = await note_store.create_note(conn, owner_id="o", title="t", body="", tags=["x"])
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with db.read() as conn:
            await note_store.list_notes(
                conn, owner_id="o", limit=20, after=(note.created_us, note.id), tag=tag
            )
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    [(statement, parameters)] = [s for s in statements if s[0].lstrip().startswith("SELECT")]
    async with db.read() as conn:
        plan = [
            row[-1]
            for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        ]
    # Without the bound SQLite uses only the owner (and tag) columns of the index.
    assert any("created_us<" in step for step in plan), plan
