"""Ledger, balances, observed transfers, reconciliation runs and discrepancies; bus tables.

Revision ID: r0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from stablegate_common.bus.migrations import create_bus_tables, drop_bus_tables
from stablegate_common.db import BaseUnits

revision = "r0001"
down_revision = None
branch_labels = None
depends_on = None

# Every journal entry must sum to zero. Checked at commit (deferred), because the
# postings of one entry are inserted one row at a time. `SET search_path FROM CURRENT`
# pins the function to this schema whatever the caller's search_path.
_ENTRY_BALANCES = """
CREATE FUNCTION ledger_entry_balances() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    entry text;
    total numeric;
    n integer;
BEGIN
    IF TG_TABLE_NAME = 'journal_entries' THEN
        entry := NEW.id;
    ELSIF TG_OP = 'DELETE' THEN
        entry := OLD.entry_id;
    ELSE
        entry := NEW.entry_id;
    END IF;
    SELECT coalesce(sum(amount_base_units), 0), count(*) INTO total, n
    FROM postings WHERE entry_id = entry;
    IF EXISTS (SELECT 1 FROM journal_entries WHERE id = entry) AND (total <> 0 OR n < 2) THEN
        RAISE EXCEPTION 'journal entry % does not balance: % postings sum to %', entry, n, total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'entry_balances';
    END IF;
    RETURN NULL;
END
$$;
"""

# The ledger is append-only: a mistake is corrected by a reversing entry, never an edit.
_APPEND_ONLY = """
CREATE FUNCTION ledger_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
"""


def upgrade() -> None:
    create_bus_tables()
    _ledger_tables()
    _reconciliation_tables()
    op.execute(_ENTRY_BALANCES)
    for table, events in (
        ("postings", "INSERT OR UPDATE OR DELETE"),
        ("journal_entries", "INSERT"),
    ):
        op.execute(
            f"CREATE CONSTRAINT TRIGGER {table}_entry_balances AFTER {events} ON {table} "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balances()"
        )
    op.execute(_APPEND_ONLY)
    for table in ("postings", "journal_entries"):
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
        )


def _ledger_tables() -> None:
    now = sa.func.now()
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("code", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("address", sa.String(64)),
        sa.Column("merchant_id", sa.String(40)),
        sa.Column("balance_base_units", BaseUnits(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("code", name="uq_accounts_code"),
        sa.CheckConstraint("kind IN ('asset', 'liability')", name="ck_accounts_kind"),
    )
    op.create_index(
        "ix_accounts_network_asset_address", "accounts", ["network", "asset", "address"]
    )
    op.create_table(
        "journal_entries",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("transfer_id", sa.String(40), nullable=False),
        sa.Column("booking_no", sa.Integer(), nullable=False),
        sa.Column("intent_id", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_journal_entries"),
        sa.UniqueConstraint(
            "transfer_id", "booking_no", name="uq_journal_entries_transfer_id_booking_no"
        ),
        sa.CheckConstraint(
            "kind IN ('transfer_confirmed', 'transfer_reverted')", name="ck_journal_entries_kind"
        ),
        sa.CheckConstraint("booking_no >= 1", name="ck_journal_entries_booking_no_positive"),
    )
    op.create_index("ix_journal_entries_intent_id", "journal_entries", ["intent_id"])
    op.create_table(
        "postings",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("entry_id", sa.String(40), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_base_units", BaseUnits(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_postings"),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entries.id"], name="fk_postings_entry_id_journal_entries"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_postings_account_id_accounts"
        ),
        sa.CheckConstraint("amount_base_units <> 0", name="ck_postings_non_zero"),
    )
    op.create_index("ix_postings_entry_id", "postings", ["entry_id"])
    op.create_index("ix_postings_account_id", "postings", ["account_id"])
    op.create_table(
        "bookings",
        sa.Column("transfer_id", sa.String(40), nullable=False),
        sa.Column("intent_id", sa.String(40), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("deposit_address", sa.String(64), nullable=False),
        sa.Column("amount_base_units", BaseUnits(), nullable=False),
        sa.Column("booked", sa.Boolean(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("transfer_id", name="pk_bookings"),
    )
    op.create_index("ix_bookings_intent_id", "bookings", ["intent_id"])
    op.create_table(
        "intent_positions",
        sa.Column("intent_id", sa.String(40), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("intent_id", name="pk_intent_positions"),
    )
    op.create_table(
        "balances",
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("available_base_units", BaseUnits(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "network", "asset", name="pk_balances"),
    )
    op.create_table(
        "observed_transfers",
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("tx_hash", sa.String(80), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("token_contract", sa.String(64), nullable=False),
        sa.Column("asset", sa.String(8)),
        sa.Column("from_address", sa.String(64), nullable=False),
        sa.Column("to_address", sa.String(64), nullable=False),
        sa.Column("amount_base_units", BaseUnits(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("network", "tx_hash", "log_index", name="pk_observed_transfers"),
        sa.CheckConstraint(
            "status IN ('detected', 'confirmed', 'reverted')", name="ck_observed_transfers_status"
        ),
    )
    op.create_index(
        "ix_observed_transfers_network_asset_to_address",
        "observed_transfers",
        ["network", "asset", "to_address"],
    )


def _reconciliation_tables() -> None:
    now = sa.func.now()
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("addresses_checked", sa.Integer(), nullable=False),
        sa.Column("discrepancies", sa.Integer(), nullable=False),
        sa.Column("discrepancies_opened", sa.Integer(), nullable=False),
        sa.Column("discrepancies_resolved", sa.Integer(), nullable=False),
        sa.Column("networks", JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_runs"),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'partial', 'failed')",
            name="ck_reconciliation_runs_status",
        ),
    )
    op.create_table(
        "discrepancies",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ledger_base_units", BaseUnits(), nullable=False),
        sa.Column("chain_base_units", BaseUnits(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("opened_run_id", sa.String(40), nullable=False),
        sa.Column("last_run_id", sa.String(40), nullable=False),
        sa.Column("resolved_run_id", sa.String(40)),
        sa.Column("opened_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_discrepancies"),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_discrepancies_status"),
    )
    op.create_index(
        "uq_discrepancies_open_address",
        "discrepancies",
        ["network", "asset", "address"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    for table in ("discrepancies", "reconciliation_runs", "observed_transfers", "balances"):
        op.drop_table(table)
    for table in ("intent_positions", "bookings", "postings", "journal_entries", "accounts"):
        op.drop_table(table)
    op.execute("DROP FUNCTION ledger_entry_balances()")
    op.execute("DROP FUNCTION ledger_append_only()")
    drop_bus_tables()
