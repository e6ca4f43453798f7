"""Fiat pricing and fees: the currency an intent is priced in, its locked rate, the fee
quote and who pays it; each merchant's processing-fee settings (NULL = the default).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAYERS = "('merchant', 'customer')"
MERCHANT_CHECKS = {
    "fee_percent_range": "fee_percent IS NULL OR (fee_percent >= 0 AND fee_percent <= 100)",
    "fee_amounts_not_negative": "coalesce(fee_fixed, 0) >= 0 AND coalesce(fee_min, 0) >= 0 "
    "AND coalesce(fee_max, 0) >= 0",
    "fee_max_not_below_min": "fee_max IS NULL OR fee_min IS NULL OR fee_max >= fee_min",
    "fee_payer_known": f"fee_payer IS NULL OR fee_payer IN {PAYERS}",
}
INTENT_CHECKS = {
    "fee_payer_known": f"fee_payer IN {PAYERS}",
    "fees_not_negative": "network_fee_base_units >= 0 AND processing_fee_base_units >= 0",
}


def upgrade() -> None:
    for column, type_ in (
        ("fee_percent", sa.Numeric(7, 4)),
        ("fee_fixed", sa.Numeric(38, 18)),
        ("fee_min", sa.Numeric(38, 18)),
        ("fee_max", sa.Numeric(38, 18)),
        ("fee_payer", sa.String(8)),
    ):
        op.add_column("merchants", sa.Column(column, type_, nullable=True))
    for name, condition in MERCHANT_CHECKS.items():
        op.create_check_constraint(op.f(f"ck_merchants_{name}"), "merchants", condition)

    op.add_column("payment_intents", sa.Column("currency", sa.String(8), nullable=True))
    # Intents created before pricing were priced in their own token, at no fee.
    op.execute("UPDATE payment_intents SET currency = asset")
    op.alter_column("payment_intents", "currency", nullable=False)
    nullable: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
        ("amount_requested", sa.Numeric()),
        ("rate", sa.Numeric()),
        ("rate_source", sa.String(64)),
        ("rate_locked_until", sa.DateTime(timezone=True)),
        ("pricing_details", postgresql.JSONB()),
    )
    for column, kind in nullable:
        op.add_column("payment_intents", sa.Column(column, kind, nullable=True))
    op.add_column(
        "payment_intents",
        sa.Column("fee_payer", sa.String(8), nullable=False, server_default="merchant"),
    )
    for column in ("network_fee_base_units", "processing_fee_base_units"):
        op.add_column(
            "payment_intents",
            sa.Column(column, sa.Numeric(78, 0), nullable=False, server_default="0"),
        )
    for name, condition in INTENT_CHECKS.items():
        op.create_check_constraint(op.f(f"ck_payment_intents_{name}"), "payment_intents", condition)


def downgrade() -> None:
    for name in INTENT_CHECKS:
        op.drop_constraint(op.f(f"ck_payment_intents_{name}"), "payment_intents", type_="check")
    for column in (
        "processing_fee_base_units",
        "network_fee_base_units",
        "fee_payer",
        "pricing_details",
        "rate_locked_until",
        "rate_source",
        "rate",
        "amount_requested",
        "currency",
    ):
        op.drop_column("payment_intents", column)
    for name in MERCHANT_CHECKS:
        op.drop_constraint(op.f(f"ck_merchants_{name}"), "merchants", type_="check")
    for column in ("fee_payer", "fee_max", "fee_min", "fee_fixed", "fee_percent"):
        op.drop_column("merchants", column)
