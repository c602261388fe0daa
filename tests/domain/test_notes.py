"""The note rules without HTTP: idempotent create, If-Match update and delete, ownership."""

from __future__ import annotations

import pytest

from service.domain import notes
from service.errors import NotFound, PreconditionFailed, ValidationFailed
from service.models.notes import NoteCreate
from service.store.db import Database


def note(title: str = "t") -> NoteCreate:
    return NoteCreate(title=title, body="b", tags=["x"])


async def test_a_retried_create_replays_the_first_answer(db: Database) -> None:
    first = await notes.create(db, owner="alice", data=note(), key="k1")
    again = await notes.create(db, owner="alice", data=note(), key="k1")
    assert not first.replayed and again.replayed
    assert again.note == first.note and again.location == first.location == (
        f"/v1/notes/{first.note.id}"
    )
    with pytest.raises(ValidationFailed):
        await notes.create(db, owner="alice", data=note("other"), key="k1")
    rows = await notes.list_notes(db, owner="alice", limit=10, after=None, tag=None)
    assert [r.id for r in rows] == [first.note.id]


async def test_if_match_guards_update_and_delete(db: Database) -> None:
    created = (await notes.create(db, owner="alice", data=note(), key=None)).note
    stale = frozenset({notes.etag(created.version + 1)})
    with pytest.raises(PreconditionFailed):
        await notes.update(
            db, owner="alice", note_id=created.id, if_match=stale, changes={"title": "new"}
        )
    with pytest.raises(PreconditionFailed):
        await notes.delete(db, owner="alice", note_id=created.id, if_match=stale)
    assert (await notes.get(db, owner="alice", note_id=created.id)).title == "t"
    current = frozenset({notes.etag(created.version)})
    updated = await notes.update(
        db, owner="alice", note_id=created.id, if_match=current, changes={"title": "new"}
    )
    assert updated.title == "new" and updated.version == created.version + 1
    await notes.delete(db, owner="alice", note_id=created.id, if_match=notes.ANY)
    with pytest.raises(NotFound):
        await notes.get(db, owner="alice", note_id=created.id)


async def test_another_owner_gets_not_found_and_changes_nothing(db: Database) -> None:
    created = (await notes.create(db, owner="alice", data=note(), key=None)).note
    with pytest.raises(NotFound):
        await notes.update(
            db, owner="bob", note_id=created.id, if_match=None, changes={"title": "x"}
        )
    with pytest.raises(NotFound):
        await notes.delete(db, owner="bob", note_id=created.id, if_match=None)
    assert (await notes.get(db, owner="alice", note_id=created.id)).title == "t"
