"""Schema migrations on Alembic: the revisions in `alembic/versions`, applied by `migrate`.

`migrate` upgrades the database to the newest revision in one transaction, under a
PostgreSQL advisory lock or SQLite's write lock (BEGIN IMMEDIATE): when several processes
run it at once, the first applies the revisions and the others then find nothing to do.

Revision ids are consecutive numbers ("0001", "0002"...), so the database's revision
compares with this code's (`current_version` < `latest_version`: behind). The runner before
Alembic numbered its versions the same way, with the same schema at each number: a database
it made (a `schema_migrations` table, no `alembic_version`) is stamped at its version's
revision and upgraded from there. Its `schema_migrations` table stays, frozen: a process of
that earlier release, restarted during a rolling upgrade, still finds its version there.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.operations.ops import MigrationScript
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, Integer, MetaData, Table, func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from . import tables
from .db import Database

# Alembic announces its dialect at every context: keep what it applies ("Running upgrade").
logging.getLogger("alembic.runtime.migration").addFilter(
    lambda record: not str(record.msg).startswith(("Context impl", "Will assume"))
)
SCRIPTS = Path(__file__).with_name("alembic")
LEGACY_TABLE = "schema_migrations"  # the runner before Alembic (versions 1 and 2)
LOCK_ID = 0x706F7274  # "port"
_legacy = Table(LEGACY_TABLE, MetaData(), Column("version", Integer, primary_key=True))


def alembic_config(**attributes: Any) -> Config:
    """The configuration, without an alembic.ini: the scripts ship inside the package."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes.update(attributes)
    return config


def include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """What autogenerate compares: everything but the earlier runner's bookkeeping."""
    return not (type_ == "table" and name == LEGACY_TABLE)


def context_options() -> dict[str, Any]:
    """How revisions run and how models compare with a database (env.py and tests)."""
    return {
        "target_metadata": tables.metadata,
        "include_name": include_name,
        "compare_type": True,
        "compare_server_default": True,
        "render_as_batch": True,  # SQLite alters a table by copying it
    }


def environment(config: Config, connection: Connection) -> dict[str, Any]:
    """env.py's `context.configure` arguments: the connection the revisions run on."""
    applied: list[int] | None = config.attributes.get("applied")

    # Alembic passes these by name.
    def on_apply(ctx: Any, step: MigrationInfo, heads: Any, run_args: Any) -> None:  # noqa: ARG001
        if applied is not None and step.is_upgrade and not step.is_stamp and step.up_revision_id:
            applied.append(int(step.up_revision_id))

    return {
        "connection": connection,
        "on_version_apply": on_apply,
        "process_revision_directives": _number_revision,
        **context_options(),
    }


def _number_revision(context: MigrationContext, _revision: Any, directives: list[Any]) -> None:
    """`alembic revision` numbers a new revision after the current head."""
    script: MigrationScript = directives[0]
    if context.config is None:  # pragma: no cover - always given by `alembic revision`
        return
    head = ScriptDirectory.from_config(context.config).get_current_head()
    script.rev_id = f"{int(head or 0) + 1:04d}"


def _legacy_version(connection: Connection) -> int:
    """The earlier runner's version of a database (0: none)."""
    if not inspect(connection).has_table(LEGACY_TABLE):
        return 0
    return int(connection.scalar(select(func.max(_legacy.c.version))) or 0)


def _database_revision(connection: Connection) -> int:
    """The revision a database is at: Alembic's, else the earlier runner's, else 0."""
    revision = MigrationContext.configure(connection).get_current_revision()
    return _legacy_version(connection) if revision is None else int(revision)


def _upgrade(connection: Connection) -> list[int]:
    applied: list[int] = []
    config = alembic_config(connection=connection, applied=applied)
    revision = MigrationContext.configure(connection).get_current_revision()
    head = ScriptDirectory.from_config(config).get_current_head()
    if revision is not None and int(revision) > int(head or 0):
        return []  # upgraded by a newer release, which keeps its schema usable by this one
    if revision is None and (legacy := _legacy_version(connection)):
        command.stamp(config, f"{legacy:04d}")  # the earlier runner's: same schema
    command.upgrade(config, "head")
    return applied


async def migrate(db: Database) -> list[int]:
    """Upgrade the database to the newest revision; return the revisions applied now."""
    async with migration_transaction(db) as conn:
        return await conn.run_sync(_upgrade)


@asynccontextmanager
async def migration_transaction(db: Database) -> AsyncIterator[AsyncConnection]:
    """The transaction revisions run in (for `migrate` and the `alembic` command): one
    process at a time; on SQLite, without foreign key actions, checked before commit."""
    await db.open()
    async with db.engine.connect() as conn:
        if db.dialect == "sqlite":
            await _sqlite_foreign_keys(conn, on=False)
        try:
            async with conn.begin():  # SQLite: BEGIN IMMEDIATE takes the write lock
                if db.dialect == "postgresql":
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
                yield conn
                if db.dialect == "sqlite":
                    broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                    if broken:
                        raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        finally:
            if db.dialect == "sqlite":
                await _sqlite_foreign_keys(conn, on=True)


async def _sqlite_foreign_keys(conn: AsyncConnection, *, on: bool) -> None:
    """SQLite drops the table it copies to alter it (Alembic's batch mode); with foreign
    keys on, that drop deletes every row referencing it (ON DELETE CASCADE). The pragma
    works outside a transaction only: set on the driver's connection (autocommit)."""
    driver: Any = (await conn.get_raw_connection()).driver_connection  # aiosqlite's
    try:
        await driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    except BaseException:
        await conn.invalidate()  # never back to the pool without its foreign keys
        raise


async def current_version(db: Database) -> int:
    """The database's revision number (0: empty)."""
    async with db.read() as conn:
        return await conn.run_sync(_database_revision)


def latest_version() -> int:
    """This code's newest revision number (reads the revision scripts)."""
    return int(ScriptDirectory(str(SCRIPTS)).get_current_head() or 0)
