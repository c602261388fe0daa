"""Baseline (version 1 of the runner before Alembic).

Revision 0001 (after None). Written out, not derived from the models: it stays what it is
when the models change.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("username", sa.String(32), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("secret_hash", sa.String(255), nullable=False),
        sa.Column("scopes", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "login_sessions",
        sa.Column("sid", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
        sa.Column("revoked_us", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_login_sessions_user", "login_sessions", ["user_id"])
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("sid", sa.String(36), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("used_us", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["sid"], ["login_sessions.sid"], ondelete="CASCADE"),
    )
    op.create_index("ix_refresh_tokens_sid", "refresh_tokens", ["sid"])
    op.create_table(
        "notes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_notes_owner_created", "notes", ["owner_id", "created_us", "id"])
    op.create_table(
        "note_tags",
        sa.Column("note_id", sa.String(36), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("tag", sa.String(32), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["note_id"], ["notes.id"], ondelete="CASCADE"),
        sa.UniqueConstraint("note_id", "tag", name="uq_note_tags"),
    )
    op.create_index(
        "ix_note_tags_owner_tag", "note_tags", ["owner_id", "tag", "created_us", "note_id"]
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("owner_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("location", sa.String(255), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_idempotency_created", "idempotency_keys", ["created_us"])
    op.create_table(
        "audit_events",
        sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
        sa.Column("ts_us", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("target", sa.String(255), nullable=True),
        sa.Column("ip", sa.String(45), nullable=True),
    )
    op.create_table(
        "signals",
        sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=True),
    )
    op.create_index("ix_signals_expires", "signals", ["expires_us"])
    op.create_table(
        "blocks",
        sa.Column("ip", sa.String(45), primary_key=True),
        sa.Column("until_us", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "blocks",
        "signals",
        "audit_events",
        "idempotency_keys",
        "note_tags",
        "notes",
        "refresh_tokens",
        "login_sessions",
        "clients",
        "users",
    ):
        op.drop_table(table)
