"""Ops users and sessions; intent timeline and transfer claims; wallets and
reconciliation read models; what the pages search and sort on.

Revision ID: d0002
Revises: d0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from stablegate_common.db import BaseUnits

revision = "d0002"
down_revision = "d0001"
branch_labels = None
depends_on = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def _users() -> None:
    op.create_table(
        "ops_users",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        _now("created_at"),
        _ts("last_login_at", nullable=True),
        _ts("disabled_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ops_users"),
        sa.UniqueConstraint("email", name="uq_ops_users_email"),
        sa.CheckConstraint("role IN ('admin', 'viewer')", name="ck_ops_users_role"),
    )
    op.create_table(
        "ops_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        _now("created_at"),
        _ts("expires_at"),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ops_sessions"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["ops_users.id"], name="fk_ops_sessions_user_id_ops_users"
        ),
    )
    op.create_index("ix_ops_sessions_user_id", "ops_sessions", ["user_id"])


def _intents() -> None:
    op.add_column("intents", sa.Column("description", sa.String(1000)))
    op.add_column(
        "intents",
        sa.Column("metadata", JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
    )
    op.add_column("intents", _ts("paid_at", nullable=True))
    for column in ("created_at", "paid_at", "reference"):
        op.create_index(f"ix_intents_{column}", "intents", [column])
    op.create_table(
        "intent_events",
        sa.Column("intent_id", sa.String(40), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("previous_status", sa.String(24)),
        sa.Column("exception", sa.String(24)),
        sa.Column("amount_received_base_units", BaseUnits(), nullable=False),
        sa.Column("amount_confirmed_base_units", BaseUnits(), nullable=False),
        sa.Column("transfer_count", sa.Integer(), nullable=False),
        _ts("occurred_at"),
        sa.PrimaryKeyConstraint("intent_id", "sequence", name="pk_intent_events"),
        sa.UniqueConstraint("position", name="uq_intent_events_position"),
    )
    op.create_table(
        "transfer_claims",
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("tx_hash", sa.String(80), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("intent_id", sa.String(40), nullable=False),
        sa.Column("transfer_id", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("network", "tx_hash", "log_index", name="pk_transfer_claims"),
    )
    op.create_index("ix_transfer_claims_tx_hash", "transfer_claims", ["tx_hash"])
    op.create_index("ix_transfer_claims_intent_id", "transfer_claims", ["intent_id"])


def _transfers() -> None:
    op.add_column(
        "transfers",
        sa.Column("position", sa.BigInteger(), sa.Identity(always=True), nullable=False),
    )
    op.create_unique_constraint("uq_transfers_position", "transfers", ["position"])
    op.create_index("ix_transfers_tx_hash", "transfers", ["tx_hash"])


def _wallets() -> None:
    op.create_table(
        "deposit_addresses",
        sa.Column("family", sa.String(8), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("derivation_index", sa.Integer(), nullable=False),
        _ts("provisioned_at"),
        sa.PrimaryKeyConstraint("family", "address", name="pk_deposit_addresses"),
    )
    op.create_table(
        "balances",
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("available_base_units", BaseUnits(), nullable=False),
        _ts("updated_at"),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "network", "asset", name="pk_balances"),
    )


def _reconciliation() -> None:
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("started_at"),
        _ts("finished_at"),
        sa.Column("addresses_checked", sa.Integer(), nullable=False),
        sa.Column("discrepancies", sa.Integer(), nullable=False),
        sa.Column("discrepancies_opened", sa.Integer(), nullable=False),
        sa.Column("discrepancies_resolved", sa.Integer(), nullable=False),
        sa.Column("networks", JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_runs"),
    )
    op.create_index("ix_reconciliation_runs_finished_at", "reconciliation_runs", ["finished_at"])
    op.create_table(
        "discrepancies",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ledger_base_units", BaseUnits()),
        sa.Column("chain_base_units", BaseUnits()),
        _ts("opened_at", nullable=True),
        _ts("resolved_at", nullable=True),
        sa.Column("resolved_run_id", sa.String(40)),
        sa.PrimaryKeyConstraint("id", name="pk_discrepancies"),
    )
    op.create_index("ix_discrepancies_status", "discrepancies", ["status"])


def upgrade() -> None:
    _users()
    _intents()
    _transfers()
    _wallets()
    _reconciliation()


def downgrade() -> None:
    for table in (
        "discrepancies",
        "reconciliation_runs",
        "balances",
        "deposit_addresses",
        "transfer_claims",
        "intent_events",
        "ops_sessions",
        "ops_users",
    ):
        op.drop_table(table)
    op.drop_index("ix_transfers_tx_hash", "transfers")
    op.drop_constraint("uq_transfers_position", "transfers")
    op.drop_column("transfers", "position")
    for column in ("reference", "paid_at", "created_at"):
        op.drop_index(f"ix_intents_{column}", "intents")
    for column in ("paid_at", "metadata", "description"):
        op.drop_column("intents", column)
