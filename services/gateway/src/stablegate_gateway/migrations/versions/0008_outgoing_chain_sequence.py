"""Outgoing transfers remember the highest watcher event sequence applied (stale
chain.tx.* facts, redelivered late, are dropped).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "outgoing_transfers",
        sa.Column("chain_sequence", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("outgoing_transfers", "chain_sequence")
