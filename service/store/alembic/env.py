"""Alembic's environment. `migrate` (service.store.migrations) passes its locked connection
in the configuration; the `alembic` command (developers: `alembic revision --autogenerate`,
`alembic check`, `alembic history`) connects to PORTCULLIS_DATABASE_URL itself."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from service.config import Settings
from service.store import migrations
from service.store.db import Database


def _run(connection: Connection) -> None:
    context.configure(**migrations.environment(context.config, connection))
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_settings() -> None:
    db = Database.for_settings(Settings())
    try:
        async with migrations.migration_transaction(db) as conn:  # as `migrate` runs
            await conn.run_sync(_run)
    finally:
        await db.close()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: run `portcullis migrate`")
given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    asyncio.run(_run_from_settings())
