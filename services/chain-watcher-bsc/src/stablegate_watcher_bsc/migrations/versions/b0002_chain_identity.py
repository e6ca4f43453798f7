"""The chain identity (chain id, genesis hash) beside the scan cursor.

Revision ID: b0002
Revises: b0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from stablegate_common.watcher.migrations import add_chain_identity, drop_chain_identity

revision = "b0002"
down_revision = "b0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_chain_identity()


def downgrade() -> None:
    drop_chain_identity()
