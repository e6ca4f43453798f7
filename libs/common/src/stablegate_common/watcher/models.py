"""The watcher's tables, in the watcher service's own schema (chosen by search_path).

- `scan_cursor`: the last block whose transfers are fully recorded, one row per network,
  with the identity of the chain it counts on (chain id, genesis hash; `identity.py`).
- `block_hashes`: hashes of the newest scanned blocks (the reorg window), to notice when
  the chain under the cursor changed.
- `watched_addresses`: the watch set; `backfilled_at` is NULL until the blocks scanned
  before the address was announced have been searched for it.
- `observed_transfers`: every Transfer of a registered token to a watched address, with
  its status and the sequence of the last event published about it.
- `tracked_transactions`: the gateway's own outgoing transactions of this network, by
  hash, from their first broadcast until final (`txtrack.py`).

`migrations.create_watcher_tables()` creates the same shapes (a test compares them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import Base, BaseUnits

TransferState = Literal["pending", "confirmed", "reverted", "ignored"]
AddressSource = Literal["provisioned", "intent"]

# Long enough for any chain's hash or address form (0x + 64 hex, Tron base58).
HASH_LENGTH = 80
ADDRESS_LENGTH = 64


class ScanCursor(Base):
    __tablename__ = "scan_cursor"

    network: Mapped[str] = mapped_column(String(32), primary_key=True)
    # -1 when scanning starts at genesis.
    last_scanned_block: Mapped[int] = mapped_column(BigInteger)
    # The chain the cursor counts on; NULL genesis_hash: made before identities were kept
    # (adopted at the next start). chain_id is NULL for chains without one (Tron).
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    genesis_hash: Mapped[str | None] = mapped_column(String(HASH_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class BlockHash(Base):
    __tablename__ = "block_hashes"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    parent_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WatchedAddress(Base):
    __tablename__ = "watched_addresses"
    __table_args__ = (
        CheckConstraint("source IN ('provisioned', 'intent')", name="source"),
        Index(
            "ix_watched_addresses_backfill_due",
            "address",
            postgresql_where=text("backfilled_at IS NULL"),
        ),
    )

    address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The scan cursor when the address arrived (NULL before the first scan).
    added_at_block: Mapped[int | None] = mapped_column(BigInteger)
    # When the producer announced it (allocation time for intents); backfill starts there.
    announced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    backfilled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ObservedTransfer(Base):
    __tablename__ = "observed_transfers"
    __table_args__ = (
        UniqueConstraint("network", "tx_hash", "log_index"),
        CheckConstraint("status IN ('pending', 'confirmed', 'reverted', 'ignored')", name="status"),
        Index(
            "ix_observed_transfers_pending",
            "network",
            "block_number",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_observed_transfers_block_number", "block_number"),
        Index("ix_observed_transfers_to_address", "to_address"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    network: Mapped[str] = mapped_column(String(32))
    tx_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    log_index: Mapped[int] = mapped_column(Integer)
    token_contract: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    from_address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    to_address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    amount: Mapped[int] = mapped_column(BaseUnits)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    block_timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    ignore_reason: Mapped[str | None] = mapped_column(String(32))
    confirmations: Mapped[int] = mapped_column(Integer)
    # Sequence of the last event published about this transfer (per subject).
    sequence: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


TrackStatus = Literal["tracking", "mined", "confirmed", "final", "stopped"]
ACTIVE_TRACK_STATUSES = ("tracking", "mined", "confirmed")


class TrackedTransaction(Base):
    """One outgoing transaction of the gateway, followed by hash.

    `tracking`: in no canonical block (yet, or again after a reorg); `mined`: in block
    `block_number`/`block_hash`; `confirmed`: as deep as the network requires, still
    watched for a reorg; `final`: past the reorg window (or finalized), no longer read;
    `stopped`: the gateway gave it up (canceled, replaced, expired).
    """

    __tablename__ = "tracked_transactions"
    __table_args__ = (
        CheckConstraint(
            "status IN ('tracking', 'mined', 'confirmed', 'final', 'stopped')", name="status"
        ),
        Index(
            "ix_tracked_transactions_active",
            "network",
            postgresql_where=text("status IN ('tracking', 'mined', 'confirmed')"),
        ),
    )

    network: Mapped[str] = mapped_column(String(32), primary_key=True)
    tx_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), primary_key=True)
    transfer_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(HASH_LENGTH))
    # The chain.tx.* fields of the block it is in: a reorg event repeats them.
    facts: Mapped[dict[str, object] | None] = mapped_column(JSONB)
    expiration_ms: Mapped[int | None] = mapped_column(BigInteger)  # Tron
    # Sequence of the newest outgoing.transfer.updated applied (older ones are ignored).
    gateway_sequence: Mapped[int] = mapped_column(Integer)
    # Sequence of the last chain.tx.* event published about it (subject network:tx_hash).
    sequence: Mapped[int] = mapped_column(Integer)
    not_found_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


WATCHER_MODELS: tuple[type[Base], ...] = (
    ScanCursor,
    BlockHash,
    WatchedAddress,
    ObservedTransfer,
    TrackedTransaction,
)
