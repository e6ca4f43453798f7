"""Bookings of outgoing transfers (sweeps, fee top-ups, Tron resources): the account kinds
and journal entry kinds they need, and the table of where each transfer stands.

Revision ID: r0002
Revises: r0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from stablegate_common.db import BaseUnits

revision = "r0002"
down_revision = "r0001"
branch_labels = None
depends_on = None

_ACCOUNT_KINDS = "kind IN ('asset', 'liability', 'native', 'external', 'expense')"
_ENTRY_KINDS = (
    "kind IN ('transfer_confirmed', 'transfer_reverted', 'outgoing_movement', "
    "'network_fee', 'outgoing_reversal')"
)


def upgrade() -> None:
    now = sa.func.now()
    op.drop_constraint("ck_accounts_kind", "accounts", type_="check")
    op.create_check_constraint("ck_accounts_kind", "accounts", _ACCOUNT_KINDS)
    op.drop_constraint("ck_journal_entries_kind", "journal_entries", type_="check")
    op.create_check_constraint("ck_journal_entries_kind", "journal_entries", _ENTRY_KINDS)
    # An outgoing transfer serves no intent (a sweep moves many intents' funds at once).
    op.alter_column("journal_entries", "intent_id", existing_type=sa.String(40), nullable=True)
    op.create_table(
        "outgoing_bookings",
        sa.Column("transfer_id", sa.String(40), nullable=False),
        sa.Column("batch_id", sa.String(40), nullable=False),
        sa.Column("purpose", sa.String(24), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(12), nullable=False),
        sa.Column("source_address", sa.String(64), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger()),
        sa.Column("outflow_base_units", BaseUnits(), nullable=False),
        sa.Column("in_flight_since", sa.DateTime(timezone=True)),
        sa.Column("legs", JSONB(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("transfer_id", name="pk_outgoing_bookings"),
    )
    op.create_index("ix_outgoing_bookings_network_state", "outgoing_bookings", ["network", "state"])


def downgrade() -> None:
    op.drop_table("outgoing_bookings")
    op.alter_column("journal_entries", "intent_id", existing_type=sa.String(40), nullable=False)
    op.drop_constraint("ck_journal_entries_kind", "journal_entries", type_="check")
    op.create_check_constraint(
        "ck_journal_entries_kind",
        "journal_entries",
        "kind IN ('transfer_confirmed', 'transfer_reverted')",
    )
    op.drop_constraint("ck_accounts_kind", "accounts", type_="check")
    op.create_check_constraint("ck_accounts_kind", "accounts", "kind IN ('asset', 'liability')")
