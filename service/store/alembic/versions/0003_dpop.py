"""DPoP (RFC 9449): key-bound login sessions, per-client DPoP policy, used proof ids.

Revision 0003 (after 0002).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("login_sessions") as batch:
        batch.add_column(sa.Column("jkt", sa.String(64), nullable=True))
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column(
                "dpop_bound_access_tokens", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.create_table(
        "dpop_proofs",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_dpop_proofs_expires", "dpop_proofs", ["expires_us"])


def downgrade() -> None:
    op.drop_index("ix_dpop_proofs_expires", table_name="dpop_proofs")
    op.drop_table("dpop_proofs")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("dpop_bound_access_tokens")
    with op.batch_alter_table("login_sessions") as batch:
        batch.drop_column("jkt")
