"""Read models of intents, transfers and chain heads; bus tables.

Revision ID: d0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from stablegate_common.bus.migrations import create_bus_tables, drop_bus_tables
from stablegate_common.db import BaseUnits

revision = "d0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    create_bus_tables()
    op.create_table(
        "intents",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("exception", sa.String(24)),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("token_contract", sa.String(64), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("amount_base_units", BaseUnits(), nullable=False),
        sa.Column("amount_received_base_units", BaseUnits(), nullable=False),
        sa.Column("amount_confirmed_base_units", BaseUnits(), nullable=False),
        sa.Column("deposit_address", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(200)),
        sa.Column("transfers", JSONB(), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("updated_at"),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_intents"),
    )
    op.create_index("ix_intents_status_id", "intents", ["status", "id"])
    op.create_index("ix_intents_merchant_id", "intents", ["merchant_id"])
    op.create_index("ix_intents_deposit_address", "intents", ["deposit_address"])
    op.create_table(
        "transfers",
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("tx_hash", sa.String(80), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("token_contract", sa.String(64), nullable=False),
        sa.Column("from_address", sa.String(64), nullable=False),
        sa.Column("to_address", sa.String(64), nullable=False),
        sa.Column("amount_base_units", BaseUnits(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(80), nullable=False),
        _ts("block_timestamp"),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("confirmations_required", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("updated_at"),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("network", "tx_hash", "log_index", name="pk_transfers"),
    )
    op.create_index("ix_transfers_network_to_address", "transfers", ["network", "to_address"])
    op.create_table(
        "chain_heads",
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("head_block", sa.BigInteger(), nullable=False),
        sa.Column("scanned_block", sa.BigInteger(), nullable=False),
        _ts("head_timestamp"),
        _ts("updated_at"),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("network", name="pk_chain_heads"),
    )


def downgrade() -> None:
    for table in ("chain_heads", "transfers", "intents"):
        op.drop_table(table)
    drop_bus_tables()
