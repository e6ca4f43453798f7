"""The full payment lifecycle: underpayment tolerance, misdirected transfers (wrong
asset, wrong network), an explicit expiry mark, resolutions of `requires_action`
intents, and the announcement mark of unsolicited transfers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _zero(column: str, type_: sa.types.TypeEngine[Any]) -> sa.Column[Any]:
    return sa.Column(column, type_, nullable=False, server_default="0")


def upgrade() -> None:
    op.add_column("merchants", _zero("underpayment_tolerance_percent", sa.Numeric(7, 4)))
    op.add_column("merchants", _zero("underpayment_tolerance_amount", sa.Numeric(38, 18)))

    op.add_column("payment_intents", _zero("underpayment_tolerance_percent", sa.Numeric(7, 4)))
    op.add_column("payment_intents", _zero("underpayment_tolerance_base_units", sa.Numeric(78, 0)))
    op.add_column("payment_intents", _zero("wrong_asset_transfers", sa.Integer()))
    op.add_column("payment_intents", _zero("wrong_network_transfers", sa.Integer()))
    op.add_column(
        "payment_intents", sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("payment_intents", sa.Column("resolution", sa.String(16), nullable=True))
    op.add_column(
        "payment_intents", sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("transfers", sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "payment_intent_resolutions",
        sa.Column("intent_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("exception", sa.String(length=24), nullable=True),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("api_key_id", sa.String(length=40), nullable=False),
        sa.Column("token_subject", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["intent_id"],
            ["payment_intents.id"],
            name=op.f("fk_payment_intent_resolutions_intent_id_payment_intents"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_payment_intent_resolutions_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("intent_id", name=op.f("pk_payment_intent_resolutions")),
    )

    # Rows written before this revision: an intent that expired said so only by status, and
    # wrong-asset transfers were attached but not counted.
    op.execute(
        "UPDATE payment_intents SET expired_at = expires_at "
        "WHERE status = 'expired' OR (status = 'requires_action' AND canceled_at IS NULL)"
    )
    op.execute(
        "UPDATE payment_intents i SET wrong_asset_transfers = ("
        " SELECT count(*) FROM transfers t WHERE t.intent_id = i.id"
        " AND t.token_contract <> i.token_contract AND t.status <> 'reverted')"
    )


def downgrade() -> None:
    op.drop_table("payment_intent_resolutions")
    op.drop_column("transfers", "announced_at")
    for column in (
        "resolved_at",
        "resolution",
        "expired_at",
        "wrong_network_transfers",
        "wrong_asset_transfers",
        "underpayment_tolerance_base_units",
        "underpayment_tolerance_percent",
    ):
        op.drop_column("payment_intents", column)
    op.drop_column("merchants", "underpayment_tolerance_amount")
    op.drop_column("merchants", "underpayment_tolerance_percent")
