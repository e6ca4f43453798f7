"""The chain identity (chain id, genesis hash) beside the scan cursor.

Revision ID: w0002
Revises: w0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from stablegate_common.watcher.migrations import add_chain_identity, drop_chain_identity

revision = "w0002"
down_revision = "w0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_chain_identity()


def downgrade() -> None:
    drop_chain_identity()
