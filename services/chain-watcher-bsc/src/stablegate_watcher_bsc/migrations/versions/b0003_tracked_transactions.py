"""The gateway's outgoing transactions, tracked by hash (funds out).

Revision ID: b0003
Revises: b0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from stablegate_common.watcher.migrations import (
    create_tracked_transactions,
    drop_tracked_transactions,
)

revision = "b0003"
down_revision = "b0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tracked_transactions()


def downgrade() -> None:
    drop_tracked_transactions()
