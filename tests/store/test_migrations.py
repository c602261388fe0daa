"""Schema migrations: an empty database and one left by the runner before Alembic reach the
newest revision on SQLite and PostgreSQL, concurrent runs apply once, and the models agree
with what the revisions build."""

from __future__ import annotations

import asyncio
import shutil
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, select

from service.store import migrations, tables
from service.store.db import Database, now_us
from tests.conftest import SettingsFactory, needs_pg
from tests.store import legacy

BOTH = ["sqlite", pytest.param("postgresql", marks=needs_pg)]
LATEST = migrations.latest_version()
ALL = list(range(1, LATEST + 1))


@pytest.fixture
async def db(settings_factory: SettingsFactory) -> AsyncIterator[Database]:
    database = Database(settings_factory().database_dsn)
    yield database
    await database.close()


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts=migrations.context_options())
    return list(compare_metadata(context, tables.metadata))


def revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def sync(db: Database, fn: Any) -> Any:
    async with db.begin() as conn:
        return await conn.run_sync(fn)


@pytest.mark.parametrize("backend", BOTH)
async def test_empty_database_reaches_head_and_agrees_with_the_models(db: Database) -> None:
    assert await migrations.current_version(db) == 0
    assert await migrations.migrate(db) == ALL
    assert await migrations.current_version(db) == LATEST
    assert await sync(db, revision) == f"{LATEST:04d}"
    assert await sync(db, differences) == []
    assert await migrations.migrate(db) == []
    # A fresh database has no bookkeeping of the runner before Alembic.
    assert not await sync(db, lambda c: inspect(c).has_table(migrations.LEGACY_TABLE))


@pytest.mark.parametrize("backend", BOTH)
async def test_models_differing_from_the_migrations_are_noticed(db: Database) -> None:
    """The agreement check is not vacuous: an index the models have and the database lacks."""
    await migrations.migrate(db)
    async with db.begin() as conn:
        await conn.run_sync(lambda c: c.exec_driver_sql("DROP INDEX ix_signals_expires"))
    found = await sync(db, differences)
    assert [d[0] for d in found] == ["add_index"] and found[0][1].name == "ix_signals_expires"


async def seed_legacy(db: Database) -> dict[str, Any]:
    """A user, a note and an audit event, written as the earlier release wrote them."""
    t = {table.name: table for table in legacy.metadata.tables.values()}
    user = {
        "id": "u1",
        "username": "alice",
        "password_hash": "$argon2id$x",
        "role": "user",
        "disabled": False,
        "created_us": 1,
        "updated_us": 1,
    }
    note = {
        "id": "n1",
        "owner_id": "u1",
        "title": "kept",
        "body": "b",
        "tags": "[]",
        "created_us": 2,
        "updated_us": 2,
        "version": 1,
    }
    async with db.begin() as conn:
        await conn.execute(t["users"].insert().values(**user))
        await conn.execute(t["notes"].insert().values(**note))
        await conn.execute(t["audit_events"].insert().values(ts_us=now_us(), event="user.created"))
    return {"users": user, "notes": note}


@pytest.mark.parametrize("backend", BOTH)
@pytest.mark.parametrize("version", [1, 2])
async def test_database_of_the_earlier_runner_is_adopted(db: Database, version: int) -> None:
    await legacy.build(db, version=version)
    rows = await seed_legacy(db)
    assert await migrations.current_version(db) == version  # a replica that only checks

    assert await migrations.migrate(db) == ALL[version:]  # stamped, then upgraded from there

    assert await sync(db, revision) == f"{LATEST:04d}"
    assert await sync(db, differences) == []
    async with db.read() as conn:
        assert dict((await conn.execute(select(tables.users))).one()._mapping) == rows["users"]
        assert dict((await conn.execute(select(tables.notes))).one()._mapping) == rows["notes"]
        assert await conn.scalar(select(tables.audit.c.event)) == "user.created"
        # Kept, frozen: a restarting process of the earlier release still finds its version.
        assert await conn.scalar(select(legacy.schema_migrations.c.version).limit(1)) == 1
    assert await migrations.migrate(db) == []


@pytest.mark.parametrize("backend", BOTH)
async def test_concurrent_migrations_apply_once(settings_factory: SettingsFactory) -> None:
    dsn = settings_factory().database_dsn
    dbs = [Database(dsn) for _ in range(3)]  # three processes starting at once
    try:
        results = await asyncio.gather(*(migrations.migrate(d) for d in dbs))
        assert sorted(results) == [[], [], ALL]
        assert await sync(dbs[0], differences) == []
    finally:
        for d in dbs:
            await d.close()


@pytest.mark.parametrize("backend", BOTH)
async def test_every_revision_downgrades(db: Database) -> None:
    await migrations.migrate(db)

    def down_and_up(connection: Connection) -> None:
        config = migrations.alembic_config(connection=connection)
        command.downgrade(config, "base")
        assert inspect(connection).get_table_names() == ["alembic_version"]
        command.upgrade(config, "head")

    await sync(db, down_and_up)
    assert await sync(db, differences) == []


def test_revisions_are_numbered_in_one_line() -> None:
    """Numbers are what `current_version < latest_version` compares: 0001, 0002... each
    after the one before, one head (two branches adding the same number fail here)."""
    script = ScriptDirectory(str(migrations.SCRIPTS))
    chain = list(reversed(list(script.walk_revisions())))
    assert [r.revision for r in chain] == [f"{n:04d}" for n in ALL]
    assert [r.down_revision for r in chain] == [None, *(f"{n:04d}" for n in ALL[:-1])]
    assert script.get_heads() == [f"{LATEST:04d}"]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_new_revision_gets_the_next_number(db: Database, tmp_path: Path) -> None:
    """`alembic revision --autogenerate` against a database at head: the next number, and
    no operations while the models and the migrations agree."""
    scripts = tmp_path / "alembic"
    shutil.copytree(migrations.SCRIPTS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    await migrations.migrate(db)

    def new_revision(connection: Connection) -> None:
        config = migrations.alembic_config(connection=connection)
        config.set_main_option("script_location", str(scripts))
        command.revision(config, message="next change", autogenerate=True)

    await sync(db, new_revision)
    [written] = (scripts / "versions").glob(f"{LATEST + 1:04d}_*.py")
    source = written.read_text()
    assert (
        f"down_revision = '{LATEST:04d}'" in source or f'down_revision = "{LATEST:04d}"' in source
    )
    assert "op." not in source.split("def upgrade")[1].split("def downgrade")[0]


def test_scripts_ship_as_package_data() -> None:
    """Every file of the migrations folder matches a package-data pattern of pyproject."""
    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["service"]
    package = root / "service"
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    files = {
        p for p in migrations.SCRIPTS.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }
    assert files and files <= shipped, sorted(map(str, files - shipped))


RECREATE_USERS = '''"""Widen users.role (SQLite copies the table)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "{number}"
down_revision = "{previous}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("role", type_=sa.String(20), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("role", type_=sa.String(16), existing_nullable=False)
'''


@pytest.mark.parametrize("backend", BOTH)
async def test_revision_that_copies_a_table_keeps_the_rows_that_reference_it(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite drops a table it copies: with foreign keys on, that drop would cascade to the
    sessions and refresh tokens of every user."""
    await migrations.migrate(db)
    async with db.begin() as conn:
        await conn.execute(
            tables.users.insert().values(
                id="u1",
                username="alice",
                password_hash="h",
                role="user",
                disabled=False,
                created_us=1,
                updated_us=1,
            )
        )
        await conn.execute(
            tables.login_sessions.insert().values(
                sid="s1", user_id="u1", scope="notes:read", created_us=1, expires_us=2
            )
        )
        await conn.execute(
            tables.refresh_tokens.insert().values(token_hash="t1", sid="s1", created_us=1)
        )
    scripts = tmp_path / "alembic"
    shutil.copytree(migrations.SCRIPTS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    number = f"{LATEST + 1:04d}"
    (scripts / "versions" / f"{number}_widen_role.py").write_text(
        RECREATE_USERS.format(number=number, previous=f"{LATEST:04d}")
    )
    monkeypatch.setattr(migrations, "SCRIPTS", scripts)

    assert await migrations.migrate(db) == [LATEST + 1]

    async with db.read() as conn:
        assert await conn.scalar(select(tables.login_sessions.c.sid)) == "s1"
        assert await conn.scalar(select(tables.refresh_tokens.c.token_hash)) == "t1"
    if db.dialect == "sqlite":  # and the connections enforce foreign keys again
        for _ in range(3):
            async with db.read() as conn:
                assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1


@pytest.mark.parametrize("backend", BOTH)
async def test_database_of_a_newer_release_is_left_alone(db: Database) -> None:
    """Rolled back during a rolling upgrade: a process of this release still starts."""
    await migrations.migrate(db)
    async with db.begin() as conn:
        await conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    assert await migrations.migrate(db) == []
    assert await migrations.current_version(db) == 99 > migrations.latest_version()
