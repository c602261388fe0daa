"""Replica key sets (version 2 of the runner before Alembic).

The signing key ids each running process verifies with. Revision 0002 (after 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replica_keys",
        sa.Column("replica", sa.String(255), primary_key=True),
        sa.Column("kids", sa.Text(), nullable=False),
        sa.Column("seen_us", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("replica_keys")
