"""The migration runner before Alembic, frozen: its tables as they were at its version 2
and its two steps, to build the databases that earlier releases left behind."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from service.store.db import Database, now_us

metadata = MetaData()
SERIAL = BigInteger().with_variant(Integer, "sqlite")

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_us", BigInteger, nullable=False),
)
V1 = [
    Table(
        "users",
        metadata,
        Column("id", String(36), primary_key=True),
        Column("username", String(32), nullable=False, unique=True),
        Column("password_hash", String(255), nullable=False),
        Column("role", String(16), nullable=False),
        Column("disabled", Boolean, nullable=False, default=False),
        Column("created_us", BigInteger, nullable=False),
        Column("updated_us", BigInteger, nullable=False),
    ),
    Table(
        "clients",
        metadata,
        Column("client_id", String(64), primary_key=True),
        Column("name", String(100), nullable=False),
        Column("secret_hash", String(255), nullable=False),
        Column("scopes", String(255), nullable=False),
        Column("disabled", Boolean, nullable=False, default=False),
        Column("created_us", BigInteger, nullable=False),
    ),
    Table(
        "login_sessions",
        metadata,
        Column("sid", String(36), primary_key=True),
        Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        Column("scope", String(255), nullable=False),
        Column("created_us", BigInteger, nullable=False),
        Column("expires_us", BigInteger, nullable=False),
        Column("revoked_us", BigInteger, nullable=True),
        Index("ix_login_sessions_user", "user_id"),
    ),
    Table(
        "refresh_tokens",
        metadata,
        Column("token_hash", String(64), primary_key=True),
        Column(
            "sid", String(36), ForeignKey("login_sessions.sid", ondelete="CASCADE"), nullable=False
        ),
        Column("created_us", BigInteger, nullable=False),
        Column("used_us", BigInteger, nullable=True),
        Index("ix_refresh_tokens_sid", "sid"),
    ),
    Table(
        "notes",
        metadata,
        Column("id", String(36), primary_key=True),
        Column("owner_id", String(64), nullable=False),
        Column("title", String(200), nullable=False),
        Column("body", Text, nullable=False),
        Column("tags", Text, nullable=False),
        Column("created_us", BigInteger, nullable=False),
        Column("updated_us", BigInteger, nullable=False),
        Column("version", Integer, nullable=False),
        Index("ix_notes_owner_created", "owner_id", "created_us", "id"),
    ),
    Table(
        "note_tags",
        metadata,
        Column("note_id", String(36), ForeignKey("notes.id", ondelete="CASCADE"), nullable=False),
        Column("owner_id", String(64), nullable=False),
        Column("tag", String(32), nullable=False),
        Column("created_us", BigInteger, nullable=False),
        UniqueConstraint("note_id", "tag", name="uq_note_tags"),
        Index("ix_note_tags_owner_tag", "owner_id", "tag", "created_us", "note_id"),
    ),
    Table(
        "idempotency_keys",
        metadata,
        Column("owner_id", String(64), primary_key=True),
        Column("key", String(255), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("status", Integer, nullable=False),
        Column("body", Text, nullable=False),
        Column("location", String(255), nullable=True),
        Column("created_us", BigInteger, nullable=False),
        Index("ix_idempotency_created", "created_us"),
    ),
    Table(
        "audit_events",
        metadata,
        Column("id", SERIAL, primary_key=True, autoincrement=True),
        Column("ts_us", BigInteger, nullable=False),
        Column("event", String(64), nullable=False),
        Column("actor", String(64), nullable=True),
        Column("target", String(255), nullable=True),
        Column("ip", String(45), nullable=True),
    ),
    Table(
        "signals",
        metadata,
        Column("id", SERIAL, primary_key=True, autoincrement=True),
        Column("kind", String(16), nullable=False),
        Column("value", String(255), nullable=False),
        Column("expires_us", BigInteger, nullable=False),
        Column("data", Text, nullable=True),
        Index("ix_signals_expires", "expires_us"),
    ),
    Table(
        "blocks",
        metadata,
        Column("ip", String(45), primary_key=True),
        Column("until_us", BigInteger, nullable=False),
        Column("reason", String(64), nullable=False),
        Column("level", Integer, nullable=False),
        Column("created_us", BigInteger, nullable=False),
    ),
]
replica_keys = Table(
    "replica_keys",
    metadata,
    Column("replica", String(255), primary_key=True),
    Column("kids", Text, nullable=False),
    Column("seen_us", BigInteger, nullable=False),
)


async def build(db: Database, *, version: int) -> None:
    """What the earlier runner's `migrate` left at `version` (1 or 2), step by step."""
    steps = [V1, [replica_keys]][:version]
    async with db.begin() as conn:
        await conn.run_sync(lambda sync: schema_migrations.create(sync))
    for number, step in enumerate(steps, start=1):

        def create(sync: Connection, step: list[Table] = step) -> None:
            metadata.create_all(sync, tables=step)

        async with db.begin() as conn:
            if db.dialect == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": 0x706F7274})
            await conn.run_sync(create)
            await conn.execute(
                schema_migrations.insert().values(version=number, applied_us=now_us())
            )
