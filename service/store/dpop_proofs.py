"""DPoP proof ids already used (the replay cache's table when Redis is not configured)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import Database, now_us
from .tables import dpop_proofs

# Rows in one INSERT: two parameters each. Under 999 parameters, so even a SQLite built with
# the old default variable limit gets each batch as one statement (SQLAlchemy would split it).
MAX_BATCH = 499


# One statement per dialect, built once: `ON CONFLICT DO NOTHING ... RETURNING` names only
# the rows this insert made.
_INSERT = {
    name: dialect.insert(dpop_proofs)
    .on_conflict_do_nothing(index_elements=[dpop_proofs.c.key_hash])
    .returning(dpop_proofs.c.key_hash)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


async def record_first_uses(db: Database, *, ttls: Mapping[str, int]) -> set[str]:
    """Insert each proof id (`key_hash` → seconds to keep it) in one statement; the ids
    that were not there yet. The primary key decides a race between processes and
    replicas. SQLAlchemy's "insertmanyvalues" sends the rows as one multi-row VALUES."""
    now = now_us()
    rows = [{"key_hash": key, "expires_us": now + ttl * 1_000_000} for key, ttl in ttls.items()]
    statement = _INSERT["postgresql" if db.dialect == "postgresql" else "sqlite"]
    return {row.key_hash for row in await db.write_one(statement, rows)}


async def purge_expired(conn: AsyncConnection) -> int:
    result = await conn.execute(delete(dpop_proofs).where(dpop_proofs.c.expires_us < now_us()))
    return int(result.rowcount or 0)
