"""When a deposit address last returned to the pool, and the free-address index in the
order allocation takes them: never used first, then the one released longest ago.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "deposit_addresses", sa.Column("released_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.drop_index("ix_deposit_addresses_free", table_name="deposit_addresses")
    op.create_index(
        "ix_deposit_addresses_free",
        "deposit_addresses",
        ["family", sa.text("released_at NULLS FIRST"), "derivation_index"],
        unique=False,
        postgresql_where="status = 'free'",
    )


def downgrade() -> None:
    op.drop_index("ix_deposit_addresses_free", table_name="deposit_addresses")
    op.create_index(
        "ix_deposit_addresses_free",
        "deposit_addresses",
        ["family", "derivation_index"],
        unique=False,
        postgresql_where="status = 'free'",
    )
    op.drop_column("deposit_addresses", "released_at")
