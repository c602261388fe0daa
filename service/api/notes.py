"""Notes of the caller over HTTP: headers, status codes and ETags; the rules are in
domain/notes.py."""

from __future__ import annotations

import re
import uuid

from quart import Blueprint, Response, request
from quart_schema import validate_response

from ..domain import notes
from ..domain.notes import ANY, etag
from ..errors import NotFound, ValidationFailed
from ..models.common import Page
from ..models.notes import NoteCreate, NotePublic, NoteQuery, NoteUpdate
from ..security.authn import current_principal, require_scope
from .body import json_body, query
from .current import services
from .documented import problems, request_headers, responds
from .paging import keyset, page
from .responses import no_content

_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
# RFC 9110 §8.8.3 entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; lists may hold empty members.
_ENTITY_TAG = re.compile(r'(W/)?("[\x21\x23-\x7e\x80-\xff]*")')
_TAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_ETAG_LIST_SYNTAX = re.compile(rf"[ \t,]*{_TAG}(?:[ \t]*,[ \t,]*{_TAG})*[ \t,]*")
_ETAG_LIST = re.compile(r'"\d{1,9}"')


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
        return ANY
    if not _ETAG_LIST_SYNTAX.fullmatch(value):
        return frozenset()
    return frozenset(tag for weak, tag in _ENTITY_TAG.findall(value) if not weak)


def make_blueprint() -> Blueprint:
    bp = Blueprint("notes", __name__, url_prefix="/notes")

    @bp.post("")
    @require_scope("notes:write")
    @json_body(NoteCreate)
    @validate_response(NotePublic, 201)
    @request_headers("Idempotency-Key")
    @responds(201, headers=("Location", "ETag", "Idempotent-Replayed"))
    async def create_note(data: NoteCreate) -> tuple[NotePublic, int, dict[str, str]]:
        """Create a note. With `Idempotency-Key`, a retry returns the first response."""
        owner = current_principal().sub
        key = request.headers.get("Idempotency-Key")
        if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
            raise ValidationFailed(
                errors=[{"loc": ["header", "Idempotency-Key"], "msg": "1..255 visible ASCII"}]
            )
        created = await notes.create(services().db, owner=owner, data=data, key=key)
        headers = {"Location": created.location, "ETag": etag(created.note.version)}
        if created.replayed:
            headers["Idempotent-Replayed"] = "true"
        return created.note, created.status, headers

    @bp.get("")
    @require_scope("notes:read")
    @query(NoteQuery)
    @validate_response(Page[NotePublic])
    async def list_notes(query_args: NoteQuery) -> Page[NotePublic]:
        """The caller's notes, newest first, `limit` per page, optional `tag` filter."""
        after = keyset(query_args.cursor)
        rows = await notes.list_notes(
            services().db,
            owner=current_principal().sub,
            limit=query_args.limit + 1,
            after=after,
            tag=query_args.tag,
        )
        return page(
            Page[NotePublic],
            rows,
            query_args.limit,
            NotePublic.from_row,
            lambda n: (n.created_us, n.id),
        )

    @bp.get("/<note_id>")
    @require_scope("notes:read")
    @validate_response(NotePublic)
    @request_headers("If-None-Match")
    @responds(200, headers=("ETag",))
    @responds(304, "Not modified: the note still has that ETag.", headers=("ETag",))
    async def get_note(note_id: str) -> tuple[NotePublic | Response, int, dict[str, str]]:
        """One note, with its `ETag`; `If-None-Match` with the current ETag → 304."""
        note = await notes.get(
            services().db, owner=current_principal().sub, note_id=_note_id(note_id)
        )
        tag = etag(note.version)
        wanted = request.headers.get("If-None-Match")
        if wanted is not None and (wanted.strip() == "*" or tag in _ETAG_LIST.findall(wanted)):
            return no_content(304), 304, {"ETag": tag}
        return NotePublic.from_row(note), 200, {"ETag": tag}

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
        note = await notes.update(
            services().db, owner=owner, note_id=ident, if_match=wanted, changes=data.changes()
        )
        return NotePublic.from_row(note), 200, {"ETag": etag(note.version)}

    @bp.delete("/<note_id>")
    @require_scope("notes:write")
    @request_headers("If-Match")
    @responds(204, "Deleted.")
    @problems(412, "`If-Match` names another version of the note.")
    async def delete_note(note_id: str) -> Response:
        """Delete a note (`If-Match` honoured)."""
        ident, owner, wanted = _note_id(note_id), current_principal().sub, _if_match()
        await notes.delete(services().db, owner=owner, note_id=ident, if_match=wanted)
        return no_content()

    return bp
