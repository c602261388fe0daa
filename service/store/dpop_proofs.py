"""DPoP proof ids already used (the replay cache's table when Redis is not configured)."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import BigInteger, String, bindparam, delete, func, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import Database, now_us
from .tables import dpop_proofs

# Proof ids in one INSERT (a batch of the replay cache's group commit).
MAX_BATCH = 500


def _insert(dialect: Any, keys: Any) -> Any:
    """INSERT the ids of the table-valued `keys` with one expiry; `ON CONFLICT DO NOTHING
    ... RETURNING` names only the rows this insert made. Two parameters, however many
    ids: no parameter processing per row, as SQLAlchemy's multi-row VALUES did
    (bench/PROFILE.md)."""
    rows = select(keys.c[0], bindparam("expires", type_=BigInteger)).where(true())
    return (
        dialect.insert(dpop_proofs)
        .from_select(["key_hash", "expires_us"], rows)  # `WHERE true`: SQLite's upsert
        .on_conflict_do_nothing(index_elements=[dpop_proofs.c.key_hash])  # needs it
        .returning(dpop_proofs.c.key_hash)
    )


# Built once per dialect: the ids as a JSON array (SQLite's json_each) or a text array
# (PostgreSQL's unnest).
_INSERT = {
    "sqlite": _insert(sqlite, func.json_each(bindparam("keys")).table_valued("value")),
    "postgresql": _insert(
        postgresql,
        func.unnest(bindparam("keys", type_=postgresql.ARRAY(String)))
        .table_valued("key_hash")
        .render_derived(),
    ),
}


async def record_first_uses(db: Database, *, keys: Collection[str], ttl_seconds: int) -> set[str]:
    """Insert each proof id (kept `ttl_seconds`) in one statement; the ids that were not
    there yet. The primary key decides a race between processes and replicas."""
    postgres = db.dialect == "postgresql"
    params = {
        "keys": list(keys) if postgres else json.dumps(list(keys)),
        "expires": now_us() + ttl_seconds * 1_000_000,
    }
    rows = await db.write_one(_INSERT["postgresql" if postgres else "sqlite"], params)
    return {row.key_hash for row in rows}


async def purge_expired(conn: AsyncConnection) -> int:
    result = await conn.execute(delete(dpop_proofs).where(dpop_proofs.c.expires_us < now_us()))
    return int(result.rowcount or 0)
