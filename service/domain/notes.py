"""The note rules: idempotent create, If-Match update and delete, the public view.

Plain async functions over the database; they raise the errors of `service.errors` and
never touch HTTP objects. The owner is part of every call, so a note of someone else is
the same 404 as a missing one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import NotFound, PreconditionFailed, ValidationFailed
from ..models.notes import NoteCreate, NotePublic
from ..store import idempotency
from ..store import notes as note_store
from ..store.db import Database
from ..store.notes import NoteRow

ANY = frozenset({"*"})  # If-Match: * (any current note)
MAX_PATCH_RETRIES = 10


def etag(version: int) -> str:
    return f'"{version}"'


def location(note_id: str) -> str:
    return f"/v1/notes/{note_id}"


async def _current(
    conn: AsyncConnection, owner: str, note_id: str, if_match: frozenset[str] | None
) -> NoteRow:
    """The note as it is now: 404 when missing, 412 unless its ETag satisfies `If-Match`
    (when one was sent)."""
    note = await note_store.get_note(conn, note_id=note_id, owner_id=owner)
    if note is None:
        raise NotFound()
    if if_match is not None and if_match is not ANY and etag(note.version) not in if_match:
        raise PreconditionFailed()
    return note


@dataclass(frozen=True, slots=True)
class Created:
    note: NotePublic
    status: int
    location: str
    replayed: bool


async def _create(db: Database, owner: str, data: NoteCreate, key: str | None) -> Created:
    request_hash = hashlib.sha256(data.model_dump_json().encode()).hexdigest()
    async with db.begin() as conn:
        if key is not None:
            record = await idempotency.get_record(conn, owner_id=owner, key=key)
            if record is not None:
                if record.request_hash != request_hash:
                    raise ValidationFailed(
                        "This Idempotency-Key was used with a different body.",
                        errors=[{"loc": ["header", "Idempotency-Key"], "msg": "key reused"}],
                    )
                stored = NotePublic.model_validate_json(record.body)
                return Created(stored, record.status, record.location or "", replayed=True)
        row = await note_store.create_note(
            conn, owner_id=owner, title=data.title, body=data.body, tags=data.tags
        )
        public = NotePublic.from_row(row)
        if key is not None:
            await idempotency.save_record(
                conn,
                owner_id=owner,
                key=key,
                request_hash=request_hash,
                status=201,
                body=public.model_dump_json(),
                location=location(row.id),
            )
    return Created(public, 201, location(row.id), replayed=False)


async def create(db: Database, *, owner: str, data: NoteCreate, key: str | None) -> Created:
    """Create a note. With an idempotency `key`, a retry of the same request replays the
    first answer, and the key with another body is a 422."""
    try:
        return await _create(db, owner, data, key)
    except IntegrityError:
        # A concurrent request with the same key committed first: replay it.
        return await _create(db, owner, data, key)


async def get(db: Database, *, owner: str, note_id: str) -> NoteRow:
    note = await note_store.get_note(db, note_id=note_id, owner_id=owner)
    if note is None:
        raise NotFound()
    return note


async def list_notes(
    db: Database, *, owner: str, limit: int, after: tuple[int, str] | None, tag: str | None
) -> list[NoteRow]:
    return await note_store.list_notes(db, owner_id=owner, limit=limit, after=after, tag=tag)


async def update(
    db: Database,
    *,
    owner: str,
    note_id: str,
    if_match: frozenset[str] | None,
    changes: dict[str, Any],
) -> NoteRow:
    """Apply `changes` when `if_match` holds; concurrent updates are applied one after
    the other (each re-checks `if_match`), never lost."""
    async with db.begin() as conn:
        for _ in range(MAX_PATCH_RETRIES):
            current = await _current(conn, owner, note_id, if_match)
            note = await note_store.update_note(
                conn,
                note_id=note_id,
                owner_id=owner,
                expected_version=current.version,
                changes=changes,
            )
            if note is not None:
                return note
            # Another update won the race: read again and re-evaluate If-Match.
    raise PreconditionFailed("The note is changing too fast; retry.")


async def delete(
    db: Database, *, owner: str, note_id: str, if_match: frozenset[str] | None
) -> None:
    """Delete the note when `if_match` holds (a named version must still be current)."""
    async with db.begin() as conn:
        current = await _current(conn, owner, note_id, if_match)
        deleted = await note_store.delete_note(
            conn,
            note_id=note_id,
            owner_id=owner,
            expected_version=None if if_match is None or if_match is ANY else current.version,
        )
    if not deleted:
        raise PreconditionFailed()
