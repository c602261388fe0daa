"""The bench's data, made through the API (users, tokens, notes, a client) before anything
is measured; only the many notes of the scaling check are copied in bulk with SQL."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, select

from .servers import Server, cli

PASSWORD = "Tr0ub4dor&3-horse-staple-bench"  # noqa: S105 - throwaway bench accounts


@dataclass
class Account:
    username: str
    user_id: str
    token: str


def register(server: Server, prefix: str = "bench") -> Account:
    username = f"{prefix}-{secrets.token_hex(4)}"
    with server.client() as c:
        reply = c.post("/v1/auth/register", json={"username": username, "password": PASSWORD})
        reply.raise_for_status()
        token = login(server, username)
        me = c.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        me.raise_for_status()
    return Account(username, str(me.json()["id"]), token)


def login(server: Server, username: str) -> str:
    with server.client() as c:
        reply = c.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": PASSWORD},
        )
        reply.raise_for_status()
        return str(reply.json()["access_token"])


def create_note(server: Server, account: Account, *, tags: list[str] | None = None) -> str:
    with server.client() as c:
        reply = c.post(
            "/v1/notes",
            json={"title": "bench note", "body": "x" * 200, "tags": tags or ["bench"]},
            headers={"Authorization": f"Bearer {account.token}"},
        )
        reply.raise_for_status()
        return str(reply.json()["id"])


def create_client(server: Server) -> tuple[str, str]:
    """An OAuth client (the product's CLI, against the server's database)."""
    out = json.loads(cli("create-client", "bench", "--scope", "notes:read", env=server.env))
    return str(out["client_id"]), str(out["client_secret"])


def sqlite_url(server: Server) -> str:
    explicit = server.env.get("PORTCULLIS_DATABASE_URL")
    if explicit:
        raise RuntimeError("bulk notes are copied on the embedded SQLite database only")
    return f"sqlite:///{Path(server.env['PORTCULLIS_DATA_DIR']) / 'portcullis.db'}"


def copy_notes(server: Server, *, template_id: str, count: int) -> list[tuple[int, str]]:
    """`count` copies of the note `template_id` (and its tag rows), each older than the
    last; returns their keyset positions (created_us, id), newest first."""
    engine = create_engine(sqlite_url(server))
    meta = MetaData()
    meta.reflect(engine, only=["notes", "note_tags"])
    notes, tags = meta.tables["notes"], meta.tables["note_tags"]
    positions: list[tuple[int, str]] = []
    with engine.begin() as conn:
        note: dict[str, Any] = dict(
            conn.execute(select(notes).where(notes.c.id == template_id)).one()._mapping
        )
        tag_rows = [
            dict(r._mapping)
            for r in conn.execute(select(tags).where(tags.c.note_id == template_id))
        ]
        batch_notes: list[dict[str, Any]] = []
        batch_tags: list[dict[str, Any]] = []
        for i in range(1, count + 1):
            ident = str(uuid.uuid4())
            created = int(note["created_us"]) - i * 1000
            batch_notes.append(note | {"id": ident, "created_us": created, "updated_us": created})
            batch_tags += [t | {"note_id": ident, "created_us": created} for t in tag_rows]
            positions.append((created, ident))
            if len(batch_notes) >= 5000 or i == count:
                conn.execute(notes.insert(), batch_notes)
                if batch_tags:
                    conn.execute(tags.insert(), batch_tags)
                batch_notes, batch_tags = [], []
    engine.dispose()
    return positions


def deep_cursor(server: Server, account: Account, position: tuple[int, str]) -> str | None:
    """A cursor pointing at `position`, made the way the service makes its own (checked
    against the cursor of its first page); None when that format is not recognised."""
    with server.client() as c:
        page = c.get(
            "/v1/notes", params={"limit": 1}, headers={"Authorization": f"Bearer {account.token}"}
        ).json()
    first, cursor = page["items"][0], page.get("next_cursor")
    if not cursor:
        return None
    item_position = [int(_created_us(server, first["id"])), first["id"]]
    if _cursor(item_position) != cursor:
        return None
    return _cursor(list(position))


def _cursor(parts: list[Any]) -> str:
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _created_us(server: Server, note_id: str) -> int:
    engine = create_engine(sqlite_url(server))
    meta = MetaData()
    meta.reflect(engine, only=["notes"])
    with engine.connect() as conn:
        notes = meta.tables["notes"]
        value = conn.execute(select(notes.c.created_us).where(notes.c.id == note_id)).scalar_one()
    engine.dispose()
    return int(value)
