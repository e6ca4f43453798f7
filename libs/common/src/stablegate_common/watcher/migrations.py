"""Alembic operations that create the watcher tables in a watcher service's schema.

Each watcher's first migration calls `create_bus_tables()` and `create_watcher_tables()`
in `upgrade()` (and the drops in `downgrade()`); its second, `add_chain_identity()`; its
third, `create_tracked_transactions()`. After them, the shapes match `watcher.models` (a
test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from stablegate_common.watcher.models import ADDRESS_LENGTH, HASH_LENGTH


def _now() -> sa.TextClause:
    return sa.text("now()")


def create_watcher_tables() -> None:
    op.create_table(
        "scan_cursor",
        sa.Column("network", sa.String(32), nullable=False),
        sa.Column("last_scanned_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("network", name="pk_scan_cursor"),
    )
    op.create_table(
        "block_hashes",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(HASH_LENGTH), nullable=False),
        sa.Column("parent_hash", sa.String(HASH_LENGTH), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_block_hashes"),
    )
    _create_watched_addresses()
    _create_observed_transfers()


def _create_watched_addresses() -> None:
    op.create_table(
        "watched_addresses",
        sa.Column("address", sa.String(ADDRESS_LENGTH), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("added_at_block", sa.BigInteger(), nullable=True),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("backfilled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("address", name="pk_watched_addresses"),
        sa.CheckConstraint(
            "source IN ('provisioned', 'intent')", name="ck_watched_addresses_source"
        ),
    )
    op.create_index(
        "ix_watched_addresses_backfill_due",
        "watched_addresses",
        ["address"],
        postgresql_where=sa.text("backfilled_at IS NULL"),
    )


def _create_observed_transfers() -> None:
    op.create_table(
        "observed_transfers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("network", sa.String(32), nullable=False),
        sa.Column("tx_hash", sa.String(HASH_LENGTH), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("token_contract", sa.String(ADDRESS_LENGTH), nullable=False),
        sa.Column("from_address", sa.String(ADDRESS_LENGTH), nullable=False),
        sa.Column("to_address", sa.String(ADDRESS_LENGTH), nullable=False),
        sa.Column("amount", sa.Numeric(78, 0), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(HASH_LENGTH), nullable=False),
        sa.Column("block_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ignore_reason", sa.String(32), nullable=True),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column(
            "first_seen_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False
        ),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_observed_transfers"),
        sa.UniqueConstraint(
            "network",
            "tx_hash",
            "log_index",
            name="uq_observed_transfers_network_tx_hash_log_index",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'reverted', 'ignored')",
            name="ck_observed_transfers_status",
        ),
    )
    op.create_index(
        "ix_observed_transfers_pending",
        "observed_transfers",
        ["network", "block_number"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_observed_transfers_block_number", "observed_transfers", ["block_number"])
    op.create_index("ix_observed_transfers_to_address", "observed_transfers", ["to_address"])


def add_chain_identity() -> None:
    """The chain a cursor counts on (w0002/b0002/t0002). Existing cursors get NULLs and
    adopt the node's chain at their next start."""
    op.add_column("scan_cursor", sa.Column("chain_id", sa.BigInteger(), nullable=True))
    op.add_column("scan_cursor", sa.Column("genesis_hash", sa.String(HASH_LENGTH), nullable=True))


def drop_chain_identity() -> None:
    op.drop_column("scan_cursor", "genesis_hash")
    op.drop_column("scan_cursor", "chain_id")


def create_tracked_transactions() -> None:
    """The gateway's outgoing transactions followed by hash (w0003/b0003/t0003)."""
    op.create_table(
        "tracked_transactions",
        sa.Column("network", sa.String(32), nullable=False),
        sa.Column("tx_hash", sa.String(HASH_LENGTH), nullable=False),
        sa.Column("transfer_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(HASH_LENGTH), nullable=True),
        sa.Column("facts", JSONB(), nullable=True),
        sa.Column("expiration_ms", sa.BigInteger(), nullable=True),
        sa.Column("gateway_sequence", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("not_found_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("network", "tx_hash", name="pk_tracked_transactions"),
        sa.CheckConstraint(
            "status IN ('tracking', 'mined', 'confirmed', 'final', 'stopped')",
            name="ck_tracked_transactions_status",
        ),
    )
    op.create_index(
        "ix_tracked_transactions_active",
        "tracked_transactions",
        ["network"],
        postgresql_where=sa.text("status IN ('tracking', 'mined', 'confirmed')"),
    )


def drop_tracked_transactions() -> None:
    op.drop_table("tracked_transactions")


def drop_watcher_tables() -> None:
    op.drop_table("observed_transfers")
    op.drop_table("watched_addresses")
    op.drop_table("block_hashes")
    op.drop_table("scan_cursor")
