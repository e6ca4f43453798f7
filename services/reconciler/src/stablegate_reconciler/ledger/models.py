"""Ledger tables: accounts, journal entries and postings, bookings (of intents' transfers
and of outgoing transfers), the last applied snapshot of each intent, merchant balances
and the transfers the chains reported.

Postings are signed base units (debit > 0, credit < 0). That every entry sums to zero is
enforced twice: by `rules.check_balanced` before writing, and by a deferred constraint
trigger in the database (migration 0001) that checks each entry at commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import BaseUnits
from stablegate_reconciler.db import ReconcilerBase


class Account(ReconcilerBase):
    __tablename__ = "accounts"
    __table_args__ = (
        # asset: tokens at an address of ours (reconciled at deposit addresses); native:
        # native coin at one; external: what left our addresses for the treasury; expense:
        # network fees; liability: what merchants are owed (available, and reserved).
        CheckConstraint(
            "kind IN ('asset', 'liability', 'native', 'external', 'expense')", name="kind"
        ),
        Index("ix_accounts_network_asset_address", "network", "asset", "address"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    network: Mapped[str] = mapped_column(String(16))
    asset: Mapped[str] = mapped_column(String(8))
    address: Mapped[str | None] = mapped_column(String(64))  # asset accounts
    merchant_id: Mapped[str | None] = mapped_column(String(40))  # liability accounts
    # Running sum of the account's postings, kept in the posting transaction so that
    # reconciliation reads one row per address instead of summing history.
    balance_base_units: Mapped[int] = mapped_column(BaseUnits, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class JournalEntry(ReconcilerBase):
    __tablename__ = "journal_entries"
    __table_args__ = (
        # The n-th booking of a transfer exists once, whoever writes it and however often
        # the event that caused it is delivered.
        UniqueConstraint("transfer_id", "booking_no"),
        CheckConstraint(
            "kind IN ('transfer_confirmed', 'transfer_reverted', 'outgoing_movement', "
            "'network_fee', 'outgoing_reserve', 'outgoing_reversal')",
            name="kind",
        ),
        CheckConstraint("booking_no >= 1", name="booking_no_positive"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    transfer_id: Mapped[str] = mapped_column(String(40))
    booking_no: Mapped[int] = mapped_column(Integer)
    intent_id: Mapped[str | None] = mapped_column(String(40), index=True)  # None: outgoing
    event_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Posting(ReconcilerBase):
    __tablename__ = "postings"
    __table_args__ = (CheckConstraint("amount_base_units <> 0", name="non_zero"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount_base_units: Mapped[int] = mapped_column(BaseUnits)


class Booking(ReconcilerBase):
    """Where one transfer stands in the books: booked (owed to the merchant) or not."""

    __tablename__ = "bookings"
    # Reconciliation checks the addresses intents were paid at (deposit addresses).
    __table_args__ = (Index("ix_bookings_network_deposit_address", "network", "deposit_address"),)

    transfer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    intent_id: Mapped[str] = mapped_column(String(40), index=True)
    merchant_id: Mapped[str] = mapped_column(String(40))
    network: Mapped[str] = mapped_column(String(16))
    asset: Mapped[str] = mapped_column(String(8))
    deposit_address: Mapped[str] = mapped_column(String(64))
    amount_base_units: Mapped[int] = mapped_column(BaseUnits)
    booked: Mapped[bool] = mapped_column(Boolean, default=False)
    entries: Mapped[int] = mapped_column(Integer, default=0)  # journal entries made so far
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IntentPosition(ReconcilerBase):
    """The newest snapshot of each intent the ledger applied (its event sequence)."""

    __tablename__ = "intent_positions"

    intent_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Balance(ReconcilerBase):
    """What a merchant is owed per network and asset: available (the negated liability
    account) and reserved for its refunds and payouts in flight (the negated reserved
    account). `available + reserved` is what it is owed."""

    __tablename__ = "balances"

    merchant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    network: Mapped[str] = mapped_column(String(16), primary_key=True)
    asset: Mapped[str] = mapped_column(String(8), primary_key=True)
    decimals: Mapped[int] = mapped_column(Integer)
    available_base_units: Mapped[int] = mapped_column(BaseUnits)
    reserved_base_units: Mapped[int] = mapped_column(BaseUnits, default=0)
    sequence: Mapped[int] = mapped_column(BigInteger)  # of its balance.updated events
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ObservedTransfer(ReconcilerBase):
    """A chain fact from a watcher, kept whether or not any intent claimed it, so that
    reconciliation checks every address that received funds."""

    __tablename__ = "observed_transfers"
    __table_args__ = (
        Index("ix_observed_transfers_network_asset_to_address", "network", "asset", "to_address"),
        CheckConstraint("status IN ('detected', 'confirmed', 'reverted')", name="status"),
    )

    network: Mapped[str] = mapped_column(String(16), primary_key=True)
    tx_hash: Mapped[str] = mapped_column(String(80), primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_contract: Mapped[str] = mapped_column(String(64))
    asset: Mapped[str | None] = mapped_column(String(8))  # None: not in the asset registry
    from_address: Mapped[str] = mapped_column(String(64))
    to_address: Mapped[str] = mapped_column(String(64))
    amount_base_units: Mapped[int] = mapped_column(BaseUnits)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16))
    confirmations: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OutgoingBooking(ReconcilerBase):
    """Where one outgoing transfer (ot_…) stands in the books: the newest update applied
    (the gateway's version of the transfer), its state, and the legs booked for it, which
    a reversal takes back exactly (a refund's or payout's reserve among them)."""

    __tablename__ = "outgoing_bookings"
    __table_args__ = (Index("ix_outgoing_bookings_network_state", "network", "state"),)

    transfer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(40))
    purpose: Mapped[str] = mapped_column(String(24))
    network: Mapped[str] = mapped_column(String(16))
    asset: Mapped[str] = mapped_column(String(12))
    source_address: Mapped[str] = mapped_column(String(64))
    merchant_id: Mapped[str | None] = mapped_column(String(40))  # refunds and payouts
    state: Mapped[str] = mapped_column(String(24))
    version: Mapped[int] = mapped_column(BigInteger)  # the event sequence last applied
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    # Tokens the transfer takes from its source's reconciled holding (0: none), and, while
    # it is `broadcast`, since when it may be mined unbooked: reconciliation excuses that
    # gap for a grace period only.
    outflow_base_units: Mapped[int] = mapped_column(BaseUnits, default=0)
    in_flight_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    legs: Mapped[list[dict[str, object]]] = mapped_column(JSONB)
    entries: Mapped[int] = mapped_column(Integer, default=0)  # journal entries made so far
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
