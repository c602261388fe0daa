"""Notes of the caller: create (idempotent), list (keyset pages), get, patch, delete."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from quart import Blueprint, Response, request
from quart_schema import validate_response
from sqlalchemy.exc import IntegrityError

from ..errors import NotFound, PreconditionFailed, ValidationFailed
from ..models.common import Page, encode_cursor, iso
from ..models.notes import NoteCreate, NotePublic, NoteQuery, NoteUpdate
from ..security.authn import current_principal, require_scope
from ..services import Services
from ..store import idempotency
from ..store import notes as note_store
from .body import cursor_after, json_body, query
from .current import services
from .documented import problems, request_headers, responds
from .responses import no_content

_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
# RFC 9110 §8.8.3 entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; lists may hold empty members.
_ENTITY_TAG = re.compile(r'(W/)?("[\x21\x23-\x7e\x80-\xff]*")')
_TAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_ETAG_LIST_SYNTAX = re.compile(rf"[ \t,]*{_TAG}(?:[ \t]*,[ \t,]*{_TAG})*[ \t,]*")
_ANY = frozenset({"*"})
_ETAG_LIST = re.compile(r'"\d{1,9}"')
MAX_PATCH_RETRIES = 10


def note_public(note: dict[str, Any]) -> NotePublic:
    return NotePublic(
        id=note["id"],
        title=note["title"],
        body=note["body"],
        tags=note["tags"],
        created_at=iso(note["created_us"]),
        updated_at=iso(note["updated_us"]),
        version=note["version"],
    )


def etag(version: int) -> str:
    return f'"{version}"'


def _note_id(raw: str) -> str:
    """Ids are UUIDs; anything else cannot exist (the same 404 as a missing note)."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFound() from None


def _if_match() -> frozenset[str] | None:
    """`If-Match` per RFC 9110 §13.1.1: None without the header, {"*"} for "any current
    note", else the strong entity tags it lists (every field line, every list member).
    Weak tags never match (strong comparison); a value that is not a list of entity
    tags matches nothing, so the condition is false (412)."""
    lines = request.headers.getlist("If-Match")
    if not lines:
        return None
    value = ", ".join(lines)
    if value.strip(" \t") == "*":
        return _ANY
    if not _ETAG_LIST_SYNTAX.fullmatch(value):
        return frozenset()
    return frozenset(tag for weak, tag in _ENTITY_TAG.findall(value) if not weak)


def _check_if_match(wanted: frozenset[str] | None, version: int) -> None:
    """412 unless the note's current ETag satisfies `If-Match` (when one was sent)."""
    if wanted is not None and wanted is not _ANY and etag(version) not in wanted:
        raise PreconditionFailed()


Created = tuple[NotePublic, int, dict[str, str]]


async def _create(svc: Services, owner: str, data: NoteCreate, key: str | None) -> Created:
    request_hash = hashlib.sha256(data.model_dump_json().encode()).hexdigest()
    async with svc.db.begin() as conn:
        if key is not None:
            record = await idempotency.get_record(conn, owner_id=owner, key=key)
            if record is not None:
                if record["request_hash"] != request_hash:
                    raise ValidationFailed(
                        "This Idempotency-Key was used with a different body.",
                        errors=[{"loc": ["header", "Idempotency-Key"], "msg": "key reused"}],
                    )
                stored = NotePublic.model_validate_json(record["body"])
                return (
                    stored,
                    record["status"],
                    {
                        "Location": record["location"] or "",
                        "ETag": etag(stored.version),
                        "Idempotent-Replayed": "true",
                    },
                )
        note = await note_store.create_note(
            conn, owner_id=owner, title=data.title, body=data.body, tags=data.tags
        )
        public = note_public(note)
        location = f"/v1/notes/{note['id']}"
        if key is not None:
            await idempotency.save_record(
                conn,
                owner_id=owner,
                key=key,
                request_hash=request_hash,
                status=201,
                body=public.model_dump_json(),
                location=location,
            )
    return public, 201, {"Location": location, "ETag": etag(note["version"])}


def make_blueprint() -> Blueprint:
    bp = Blueprint("notes", __name__, url_prefix="/notes")

    @bp.post("")
    @require_scope("notes:write")
    @json_body(NoteCreate)
    @validate_response(NotePublic, 201)
    @request_headers("Idempotency-Key")
    @responds(201, headers=("Location", "ETag", "Idempotent-Replayed"))
    async def create_note(data: NoteCreate) -> Created:
        """Create a note. With `Idempotency-Key`, a retry returns the first response."""
        owner = current_principal().sub
        key = request.headers.get("Idempotency-Key")
        if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
            raise ValidationFailed(
                errors=[{"loc": ["header", "Idempotency-Key"], "msg": "1..255 visible ASCII"}]
            )
        svc = services()
        try:
            return await _create(svc, owner, data, key)
        except IntegrityError:
            # A concurrent request with the same key committed first: replay it.
            return await _create(svc, owner, data, key)

    @bp.get("")
    @require_scope("notes:read")
    @query(NoteQuery)
    @validate_response(Page[NotePublic])
    async def list_notes(query_args: NoteQuery) -> Page[NotePublic]:
        """The caller's notes, newest first, `limit` per page, optional `tag` filter."""
        after = cursor_after(query_args.cursor, (int, str))
        async with services().db.read() as conn:
            rows = await note_store.list_notes(
                conn,
                owner_id=current_principal().sub,
                limit=query_args.limit + 1,
                after=(int(after[0]), str(after[1])) if after else None,
                tag=query_args.tag,
            )
        items, more = rows[: query_args.limit], len(rows) > query_args.limit
        cursor = encode_cursor(items[-1]["created_us"], items[-1]["id"]) if more else None
        return Page[NotePublic](items=[note_public(n) for n in items], next_cursor=cursor)

    @bp.get("/<note_id>")
    @require_scope("notes:read")
    @validate_response(NotePublic)
    @request_headers("If-None-Match")
    @responds(200, headers=("ETag",))
    @responds(304, "Not modified: the note still has that ETag.", headers=("ETag",))
    async def get_note(note_id: str) -> tuple[NotePublic | Response, int, dict[str, str]]:
        """One note, with its `ETag`; `If-None-Match` with the current ETag → 304."""
        async with services().db.read() as conn:
            note = await note_store.get_note(
                conn, note_id=_note_id(note_id), owner_id=current_principal().sub
            )
        if note is None:
            raise NotFound()
        tag = etag(note["version"])
        wanted = request.headers.get("If-None-Match")
        if wanted is not None and (wanted.strip() == "*" or tag in _ETAG_LIST.findall(wanted)):
            return no_content(304), 304, {"ETag": tag}
        return note_public(note), 200, {"ETag": tag}

    @bp.patch("/<note_id>")
    @require_scope("notes:write")
    @json_body(NoteUpdate)
    @validate_response(NotePublic)
    @request_headers("If-Match")
    @responds(200, headers=("ETag",))
    @problems(412, "`If-Match` names another version of the note.")
    async def patch_note(note_id: str, data: NoteUpdate) -> tuple[NotePublic, int, dict[str, str]]:
        """Partial update. `If-Match` with a stale ETag → 412; concurrent updates are
        applied one after the other, never lost."""
        ident, owner, wanted = _note_id(note_id), current_principal().sub, _if_match()
        async with services().db.begin() as conn:
            for _ in range(MAX_PATCH_RETRIES):
                current = await note_store.get_note(conn, note_id=ident, owner_id=owner)
                if current is None:
                    raise NotFound()
                _check_if_match(wanted, current["version"])
                note = await note_store.update_note(
                    conn,
                    note_id=ident,
                    owner_id=owner,
                    expected_version=current["version"],
                    changes=data.changes(),
                )
                if note is not None:
                    return note_public(note), 200, {"ETag": etag(note["version"])}
                # Another update won the race: read again and re-evaluate If-Match.
        raise PreconditionFailed("The note is changing too fast; retry.")

    @bp.delete("/<note_id>")
    @require_scope("notes:write")
    @request_headers("If-Match")
    @responds(204, "Deleted.")
    @problems(412, "`If-Match` names another version of the note.")
    async def delete_note(note_id: str) -> Response:
        """Delete a note (`If-Match` honoured)."""
        ident, owner, wanted = _note_id(note_id), current_principal().sub, _if_match()
        async with services().db.begin() as conn:
            current = await note_store.get_note(conn, note_id=ident, owner_id=owner)
            if current is None:
                raise NotFound()
            _check_if_match(wanted, current["version"])
            deleted = await note_store.delete_note(
                conn,
                note_id=ident,
                owner_id=owner,
                expected_version=None if wanted is None or wanted is _ANY else current["version"],
            )
        if not deleted:
            raise PreconditionFailed()
        return no_content()

    return bp
