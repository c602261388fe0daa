"""The hot store queries run statements built once at import, not per call (R5)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from service.store import notes as note_store
from service.store import users as user_store
from service.store.db import Database


async def test_hot_queries_reuse_their_prebuilt_statements(db: Database) -> None:
    async with db.begin() as conn:
        user = await user_store.create_user(
            conn,
            username="u1",
            password_hash="-",
            role="user",
        )
        note = await note_store.create_note(conn, owner_id="o", title="t", body="", tags=["x"])
    executed: list[Any] = []

    def capture(_conn: Any, clauseelement: Any, *_: Any) -> None:
        executed.append(clauseelement)

    event.listen(db.engine.sync_engine, "before_execute", capture)
    try:
        async with db.read() as conn:
            for _ in range(2):
                assert await user_store.get_user(conn, user_id=user.id) == user
                assert await user_store.get_user_by_name(conn, username="u1") == user
                assert await user_store.get_client(conn, client_id="none") is None
                assert await note_store.get_note(conn, note_id=note.id, owner_id="o") == note
                for tag in (None, "x"):
                    for after in (None, (note.created_us + 1, note.id)):
                        [row] = await note_store.list_notes(
                            conn, owner_id="o", limit=5, after=after, tag=tag
                        )
                        assert row == note
    finally:
        event.remove(db.engine.sync_engine, "before_execute", capture)
    first, second = executed[: len(executed) // 2], executed[len(executed) // 2 :]
    assert len(first) == 8
    assert all(a is b for a, b in zip(first, second, strict=True))
