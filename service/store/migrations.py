"""Versioned schema migrations, applied in order, each in its own transaction.

`migrate` is idempotent and safe when several processes run it at once: PostgreSQL
takes an advisory lock, SQLite's BEGIN IMMEDIATE serialises the writers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from . import tables
from .db import Database, now_us

Migration = Callable[[AsyncConnection], Awaitable[None]]
_LOCK_ID = 0x706F7274  # "port"


async def _v1_initial(conn: AsyncConnection) -> None:
    await conn.run_sync(
        lambda sync: tables.metadata.create_all(
            sync,
            tables=[
                tables.users,
                tables.clients,
                tables.login_sessions,
                tables.refresh_tokens,
                tables.notes,
                tables.note_tags,
                tables.idempotency,
                tables.audit,
                tables.signals,
                tables.blocks,
            ],
        )
    )


async def _v2_replica_keys(conn: AsyncConnection) -> None:
    await conn.run_sync(lambda sync: tables.replica_keys.create(sync))


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "initial schema", _v1_initial),
    (2, "replica key sets", _v2_replica_keys),
)


async def current_version(db: Database) -> int:
    async with db.begin() as conn:
        if db.dialect == "postgresql":  # two processes creating the table at once
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        await conn.run_sync(lambda sync: tables.schema_migrations.create(sync, checkfirst=True))
        rows = await conn.execute(select(tables.schema_migrations.c.version))
        return max((row.version for row in rows), default=0)


async def migrate(db: Database) -> list[int]:
    """Apply every pending migration; return the versions applied now."""
    applied: list[int] = []
    await current_version(db)  # ensures the bookkeeping table exists
    for version, _name, step in MIGRATIONS:
        async with db.begin() as conn:
            if db.dialect == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
            done = await conn.scalar(
                select(tables.schema_migrations.c.version).where(
                    tables.schema_migrations.c.version == version
                )
            )
            if done is not None:
                continue
            await step(conn)
            await conn.execute(
                tables.schema_migrations.insert().values(version=version, applied_us=now_us())
            )
            applied.append(version)
    return applied


def latest_version() -> int:
    return MIGRATIONS[-1][0]
