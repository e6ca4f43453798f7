"""Bus tables (outbox, inbox) and watcher tables (cursor, block hashes, watch set,
observed transfers) of the BNB Smart Chain watcher.

Revision ID: b0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from stablegate_common.bus.migrations import create_bus_tables, drop_bus_tables
from stablegate_common.watcher.migrations import create_watcher_tables, drop_watcher_tables

revision = "b0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_bus_tables()
    create_watcher_tables()


def downgrade() -> None:
    drop_watcher_tables()
    drop_bus_tables()
