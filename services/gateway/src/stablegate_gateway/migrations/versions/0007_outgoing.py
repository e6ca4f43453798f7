"""Outgoing transfers (sweeps, refunds, payouts) and their signing rounds.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BASE_UNITS = sa.Numeric(78, 0)


def upgrade() -> None:
    op.create_table(
        "outgoing_batches",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("request_document", sa.Text(), nullable=False),
        sa.Column("request_digest", sa.String(71), nullable=False),
        sa.Column("plan_summary", postgresql.JSONB(), nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_document", sa.Text(), nullable=True),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("canceled_by", sa.String(80), nullable=True),
    )
    op.create_table(
        "outgoing_transfers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "batch_id",
            sa.String(40),
            sa.ForeignKey(
                "outgoing_batches.id", name="fk_outgoing_transfers_batch_id_outgoing_batches"
            ),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(24), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=True),
        sa.Column("source_address", sa.String(64), nullable=False),
        sa.Column("source_path", sa.String(64), nullable=False),
        sa.Column("destination_address", sa.String(64), nullable=True),
        sa.Column("destination_path", sa.String(64), nullable=True),
        sa.Column("asset", sa.String(12), nullable=False),
        sa.Column("token_contract", sa.String(64), nullable=True),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("amount_base_units", BASE_UNITS, nullable=False),
        sa.Column(
            "depends_on",
            sa.String(40),
            sa.ForeignKey(
                "outgoing_transfers.id", name="fk_outgoing_transfers_depends_on_outgoing_transfers"
            ),
            nullable=True,
        ),
        sa.Column("reference", sa.String(40), nullable=True),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("gas_limit", sa.BigInteger(), nullable=True),
        sa.Column("max_fee_per_gas", BASE_UNITS, nullable=True),
        sa.Column("max_priority_fee_per_gas", BASE_UNITS, nullable=True),
        sa.Column("gas_price", BASE_UNITS, nullable=True),
        sa.Column("tron_contract_type", sa.String(32), nullable=True),
        sa.Column("ref_block_bytes", sa.String(4), nullable=True),
        sa.Column("ref_block_hash", sa.String(16), nullable=True),
        sa.Column("expiration_ms", sa.BigInteger(), nullable=True),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=True),
        sa.Column("fee_limit", BASE_UNITS, nullable=True),
        sa.Column("resource", sa.String(16), nullable=True),
        sa.Column("lock", sa.Boolean(), nullable=True),
        sa.Column("lock_period", sa.BigInteger(), nullable=True),
        sa.Column("max_fee_base_units", BASE_UNITS, nullable=False),
        sa.Column("estimated_fee_base_units", BASE_UNITS, nullable=False),
        sa.Column("estimated_energy", sa.BigInteger(), nullable=True),
        sa.Column("estimated_bandwidth", sa.BigInteger(), nullable=True),
        sa.Column("tx_hash", sa.String(80), nullable=True),
        sa.Column("signed_hex", sa.Text(), nullable=True),
        sa.Column("broadcast_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("first_broadcast_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_broadcast_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_broadcast_error", sa.Text(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(80), nullable=True),
        sa.Column("mined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("receipt_status", sa.String(16), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("effective_gas_price", BASE_UNITS, nullable=True),
        sa.Column("energy_used", sa.BigInteger(), nullable=True),
        sa.Column("bandwidth_used", sa.BigInteger(), nullable=True),
        sa.Column("fee_paid_base_units", BASE_UNITS, nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column(
            "replaces",
            sa.String(40),
            sa.ForeignKey(
                "outgoing_transfers.id", name="fk_outgoing_transfers_replaces_outgoing_transfers"
            ),
            nullable=True,
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.UniqueConstraint("batch_id", "seq", name="uq_outgoing_transfers_batch_id_seq"),
    )
    op.create_index(
        "ix_outgoing_transfers_tx_hash", "outgoing_transfers", ["network", "tx_hash"], unique=True
    )
    op.create_index("ix_outgoing_transfers_state", "outgoing_transfers", ["state", "network"])
    op.create_index(
        "ix_outgoing_transfers_source",
        "outgoing_transfers",
        ["network", "source_address", "nonce"],
    )


def downgrade() -> None:
    op.drop_table("outgoing_transfers")
    op.drop_table("outgoing_batches")
