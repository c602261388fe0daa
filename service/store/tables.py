"""Table definitions. Times are integer microseconds since the Unix epoch (UTC):
portable across SQLite and PostgreSQL, exact for keyset pagination."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(32), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("secret_hash", String(255), nullable=False),
    Column("scopes", String(255), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_us", BigInteger, nullable=False),
    # RFC 9449 §5.2: refuse this client's token requests without a DPoP proof.
    Column("dpop_bound_access_tokens", Boolean, nullable=False, server_default=false()),
)

# One row per login (password grant); refresh tokens rotate inside it.
login_sessions = Table(
    "login_sessions",
    metadata,
    Column("sid", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("scope", String(255), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger, nullable=True),
    Column("jkt", String(64), nullable=True),  # DPoP key its refresh tokens are bound to
    Index("ix_login_sessions_user", "user_id"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("sid", String(36), ForeignKey("login_sessions.sid", ondelete="CASCADE"), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("used_us", BigInteger, nullable=True),
    Index("ix_refresh_tokens_sid", "sid"),
)

notes = Table(
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
)

note_tags = Table(
    "note_tags",
    metadata,
    Column("note_id", String(36), ForeignKey("notes.id", ondelete="CASCADE"), nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("tag", String(32), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    UniqueConstraint("note_id", "tag", name="uq_note_tags"),
    Index("ix_note_tags_owner_tag", "owner_id", "tag", "created_us", "note_id"),
)

idempotency = Table(
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
)

audit = Table(
    "audit_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("ts_us", BigInteger, nullable=False),
    Column("event", String(64), nullable=False),
    Column("actor", String(64), nullable=True),
    Column("target", String(255), nullable=True),
    Column("ip", String(45), nullable=True),
)

# Cross-process signals: revoked token ids and sessions, blocks and unblocks. Every
# process replays new rows into memory, so per-request checks never touch SQL.
signals = Table(
    "signals",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("kind", String(16), nullable=False),
    Column("value", String(255), nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("data", Text, nullable=True),
    Index("ix_signals_expires", "expires_us"),
)

blocks = Table(
    "blocks",
    metadata,
    Column("ip", String(45), primary_key=True),
    Column("until_us", BigInteger, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("level", Integer, nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

# DPoP proofs seen (sha256 of key thumbprint and jti), while they could be replayed.
dpop_proofs = Table(
    "dpop_proofs",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("expires_us", BigInteger, nullable=False),
    Index("ix_dpop_proofs_expires", "expires_us"),
)

# The signing key ids each running process verifies with, so replicas that were given
# different key files are noticed (one row per process, refreshed by its upkeep loop).
replica_keys = Table(
    "replica_keys",
    metadata,
    Column("replica", String(255), primary_key=True),
    Column("kids", Text, nullable=False),
    Column("seen_us", BigInteger, nullable=False),
)
