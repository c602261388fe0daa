"""Each process's published signing key ids (`replica_keys`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import now_us
from .tables import replica_keys


@dataclass(frozen=True)
class ReplicaKeys:
    replica: str
    kids: frozenset[str]
    seen_us: int


async def publish(conn: AsyncConnection, *, replica: str, kids: frozenset[str]) -> None:
    """Insert or refresh this process's row."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    values = {"replica": replica, "kids": " ".join(sorted(kids)), "seen_us": now_us()}
    statement = insert(replica_keys).values(**values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[replica_keys.c.replica],
            set_={"kids": values["kids"], "seen_us": values["seen_us"]},
        )
    )


async def recent(conn: AsyncConnection, *, seen_after_us: int) -> list[ReplicaKeys]:
    rows = await conn.execute(select(replica_keys).where(replica_keys.c.seen_us > seen_after_us))
    return [ReplicaKeys(r.replica, frozenset(r.kids.split()), r.seen_us) for r in rows]


async def purge(conn: AsyncConnection, *, seen_before_us: int) -> None:
    await conn.execute(delete(replica_keys).where(replica_keys.c.seen_us < seen_before_us))
