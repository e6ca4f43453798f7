"""Refunds and payouts (one `disbursements` table), the merchant's approval limit, and
what the ledger holds reserved for them in the balance read model.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BASE_UNITS = sa.Numeric(78, 0)


def upgrade() -> None:
    op.create_table(
        "disbursements",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column(
            "merchant_id",
            sa.String(40),
            sa.ForeignKey("merchants.id", name="fk_disbursements_merchant_id_merchants"),
            nullable=False,
        ),
        sa.Column(
            "payment_intent_id",
            sa.String(40),
            sa.ForeignKey(
                "payment_intents.id", name="fk_disbursements_payment_intent_id_payment_intents"
            ),
            nullable=True,
        ),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("token_contract", sa.String(64), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("amount_base_units", BASE_UNITS, nullable=False),
        sa.Column("destination_address", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("metadata", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("fee_payer", sa.String(8), nullable=False, server_default="merchant"),
        sa.Column("source", sa.String(16), nullable=True),
        sa.Column("source_address", sa.String(64), nullable=True),
        sa.Column(
            "transfer_id",
            sa.String(40),
            sa.ForeignKey(
                "outgoing_transfers.id", name="fk_disbursements_transfer_id_outgoing_transfers"
            ),
            nullable=True,
        ),
        sa.Column("tx_hash", sa.String(80), nullable=True),
        sa.Column("network_fee_base_units", BASE_UNITS, nullable=True),
        sa.Column("failure_reason", sa.String(1000), nullable=True),
        sa.Column("requires_approval", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("approvals", postgresql.JSONB(), nullable=False, server_default="[]"),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("canceled_by", sa.String(80), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("kind IN ('refund', 'payout')", name="ck_disbursements_kind"),
        sa.CheckConstraint("amount_base_units > 0", name="ck_disbursements_amount_positive"),
        sa.CheckConstraint(
            "(kind = 'refund') = (payment_intent_id IS NOT NULL)",
            name="ck_disbursements_refund_has_intent",
        ),
    )
    op.create_index(
        "ix_disbursements_merchant_kind_id", "disbursements", ["merchant_id", "kind", "id"]
    )
    op.create_index("ix_disbursements_intent", "disbursements", ["payment_intent_id"])
    op.create_index(
        "ix_disbursements_plannable",
        "disbursements",
        ["network", "id"],
        postgresql_where=sa.text("status = 'pending' AND transfer_id IS NULL"),
    )
    op.add_column(
        "merchants",
        # Refunds and payouts above this many token units need two admins' approvals;
        # NULL: the gateway default (GATEWAY_DISBURSEMENT_APPROVAL_LIMIT).
        sa.Column("disbursement_approval_limit", sa.Numeric(38, 18), nullable=True),
    )
    op.add_column("outgoing_transfers", sa.Column("merchant_id", sa.String(40), nullable=True))
    op.add_column(
        "payment_intents",
        sa.Column("amount_refunded_base_units", BASE_UNITS, nullable=False, server_default="0"),
    )
    op.add_column(
        "balances",
        sa.Column("reserved_base_units", BASE_UNITS, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("balances", "reserved_base_units")
    op.drop_column("payment_intents", "amount_refunded_base_units")
    op.drop_column("outgoing_transfers", "merchant_id")
    op.drop_column("merchants", "disbursement_approval_limit")
    op.drop_table("disbursements")
