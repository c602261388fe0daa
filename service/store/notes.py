"""Notes. The owner is a keyword argument of every function and part of every query,
so a forgotten ownership check cannot happen."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Select, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import BindParameter

from .db import Conn, first, now_us, rows
from .tables import note_tags, notes


@dataclass(frozen=True, slots=True)
class NoteRow:
    id: str
    owner_id: str
    title: str
    body: str
    tags: list[str]
    created_us: int
    updated_us: int
    version: int


# The hot statements are built once: building a statement and its cache key per call
# costs about as much as running it on SQLite.
_INSERT_NOTE = notes.insert()
_INSERT_TAGS = note_tags.insert()
_DELETE_TAGS = delete(note_tags).where(note_tags.c.note_id == bindparam("note_id"))
_GET_NOTE = select(notes).where(
    notes.c.id == bindparam("note_id"), notes.c.owner_id == bindparam("owner_id")
)


def _page(*, tag: bool, after: bool) -> Select[Any]:
    """Newest first; keyset pagination on (created_us, id). The redundant
    `created <= X` lets SQLite search the (owner, ..., created_us, id) index from the
    cursor down instead of scanning from the newest row to it."""
    if tag:
        created, ident = note_tags.c.created_us, note_tags.c.note_id
        query = (
            select(notes)
            .join(note_tags, note_tags.c.note_id == notes.c.id)
            .where(
                note_tags.c.owner_id == bindparam("owner_id"), note_tags.c.tag == bindparam("tag")
            )
        )
    else:
        created, ident = notes.c.created_us, notes.c.id
        query = select(notes).where(notes.c.owner_id == bindparam("owner_id"))
    if after:
        after_created: BindParameter[Any] = bindparam("after_created")
        after_id: BindParameter[Any] = bindparam("after_id")
        query = query.where(
            created <= after_created,
            (created < after_created) | ((created == after_created) & (ident < after_id)),
        )
    return query.order_by(created.desc(), ident.desc()).limit(bindparam("limit"))


_PAGES = {
    (tag, after): _page(tag=tag, after=after) for tag in (False, True) for after in (False, True)
}


def _note(row: Any) -> NoteRow:
    return NoteRow(
        id=row.id,
        owner_id=row.owner_id,
        title=row.title,
        body=row.body,
        tags=json.loads(row.tags),
        created_us=row.created_us,
        updated_us=row.updated_us,
        version=row.version,
    )


async def _set_tags(
    conn: AsyncConnection, *, note_id: str, owner_id: str, tags: list[str], created_us: int
) -> None:
    await conn.execute(_DELETE_TAGS, {"note_id": note_id})
    if tags:
        await conn.execute(
            _INSERT_TAGS,
            [
                {"note_id": note_id, "owner_id": owner_id, "tag": t, "created_us": created_us}
                for t in dict.fromkeys(tags)
            ],
        )


async def create_note(
    conn: AsyncConnection, *, owner_id: str, title: str, body: str, tags: list[str]
) -> NoteRow:
    now = now_us()
    note = NoteRow(
        id=str(uuid.uuid4()),
        owner_id=owner_id,
        title=title,
        body=body,
        tags=tags,
        created_us=now,
        updated_us=now,
        version=1,
    )
    await conn.execute(_INSERT_NOTE, asdict(note) | {"tags": json.dumps(tags)})
    await _set_tags(conn, note_id=note.id, owner_id=owner_id, tags=tags, created_us=now)
    return note


async def get_note(conn: Conn, *, note_id: str, owner_id: str) -> NoteRow | None:
    row = await first(conn, _GET_NOTE, {"note_id": note_id, "owner_id": owner_id})
    return _note(row) if row else None


async def list_notes(
    conn: Conn,
    *,
    owner_id: str,
    limit: int,
    after: tuple[int, str] | None,
    tag: str | None,
) -> list[NoteRow]:
    """Newest first; keyset pagination on (created_us, id): the cost of a page does not
    depend on its depth, and concurrent inserts never shift later pages."""
    params: dict[str, Any] = {"owner_id": owner_id, "limit": limit}
    if tag is not None:
        params["tag"] = tag
    if after is not None:
        params["after_created"], params["after_id"] = after
    query = _PAGES[(tag is not None, after is not None)]
    return [_note(row) for row in await rows(conn, query, params)]


async def update_note(
    conn: AsyncConnection,
    *,
    note_id: str,
    owner_id: str,
    expected_version: int,
    changes: dict[str, Any],
) -> NoteRow | None:
    """Apply `changes` only if the note is still at `expected_version` (else None)."""
    values = dict(changes)
    if "tags" in values:
        values["tags"] = json.dumps(values["tags"])
    result = await conn.execute(
        update(notes)
        .where(
            notes.c.id == note_id,
            notes.c.owner_id == owner_id,
            notes.c.version == expected_version,
        )
        .values(**values, updated_us=now_us(), version=notes.c.version + 1)
    )
    if result.rowcount != 1:
        return None
    note = await get_note(conn, note_id=note_id, owner_id=owner_id)
    if note is not None and "tags" in changes:
        await _set_tags(
            conn,
            note_id=note_id,
            owner_id=owner_id,
            tags=changes["tags"],
            created_us=note.created_us,
        )
    return note


async def delete_note(
    conn: AsyncConnection, *, note_id: str, owner_id: str, expected_version: int | None
) -> bool:
    query = delete(notes).where(notes.c.id == note_id, notes.c.owner_id == owner_id)
    if expected_version is not None:
        query = query.where(notes.c.version == expected_version)
    # note_tags rows go with the note (ON DELETE CASCADE).
    result = await conn.execute(query)
    return bool(result.rowcount)
