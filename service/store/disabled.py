"""The ids of disabled users and clients, read whole (the disabled-principal watcher)."""

from __future__ import annotations

from sqlalchemy import literal, select, true, union_all

from .db import Database
from .tables import clients, users

_DISABLED = union_all(
    select(literal("user").label("kind"), users.c.id.label("id")).where(users.c.disabled == true()),
    select(literal("client").label("kind"), clients.c.client_id.label("id")).where(
        clients.c.disabled == true()
    ),
)


async def disabled_ids(db: Database) -> tuple[frozenset[str], frozenset[str]]:
    """(disabled user ids, disabled client ids), in one read."""
    rows = await db.fetch(select(_DISABLED.subquery()), {})
    users_out = frozenset(str(r.id) for r in rows if r.kind == "user")
    clients_out = frozenset(str(r.id) for r in rows if r.kind == "client")
    return users_out, clients_out
