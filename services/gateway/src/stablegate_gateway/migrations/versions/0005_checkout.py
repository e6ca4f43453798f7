"""The hosted checkout's return links on payment intents.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payment_intents", sa.Column("success_url", sa.String(2000), nullable=True))
    op.add_column("payment_intents", sa.Column("cancel_url", sa.String(2000), nullable=True))


def downgrade() -> None:
    op.drop_column("payment_intents", "cancel_url")
    op.drop_column("payment_intents", "success_url")
