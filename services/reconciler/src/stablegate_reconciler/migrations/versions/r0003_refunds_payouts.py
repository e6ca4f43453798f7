"""Refunds and payouts: merchant balances keep what is reserved for those in flight, the
reserve has its journal entry kind, an outgoing booking remembers the merchant who pays,
and reconciliation finds deposit addresses by the bookings of intents.

Revision ID: r0003
Revises: r0002
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from stablegate_common.db import BaseUnits

revision = "r0003"
down_revision = "r0002"
branch_labels = None
depends_on = None

_ENTRY_KINDS = (
    "kind IN ('transfer_confirmed', 'transfer_reverted', 'outgoing_movement', "
    "'network_fee', 'outgoing_reserve', 'outgoing_reversal')"
)
_ENTRY_KINDS_BEFORE = (
    "kind IN ('transfer_confirmed', 'transfer_reverted', 'outgoing_movement', "
    "'network_fee', 'outgoing_reversal')"
)


def upgrade() -> None:
    op.drop_constraint("ck_journal_entries_kind", "journal_entries", type_="check")
    op.create_check_constraint("ck_journal_entries_kind", "journal_entries", _ENTRY_KINDS)
    # Nothing was reserved before refunds: every existing balance is all available.
    op.add_column(
        "balances",
        sa.Column("reserved_base_units", BaseUnits(), nullable=False, server_default="0"),
    )
    op.alter_column("balances", "reserved_base_units", server_default=None)
    op.add_column("outgoing_bookings", sa.Column("merchant_id", sa.String(40)))
    op.create_index(
        "ix_bookings_network_deposit_address", "bookings", ["network", "deposit_address"]
    )


def downgrade() -> None:
    op.drop_index("ix_bookings_network_deposit_address", "bookings")
    op.drop_column("outgoing_bookings", "merchant_id")
    op.drop_column("balances", "reserved_base_units")
    op.drop_constraint("ck_journal_entries_kind", "journal_entries", type_="check")
    op.create_check_constraint("ck_journal_entries_kind", "journal_entries", _ENTRY_KINDS_BEFORE)
