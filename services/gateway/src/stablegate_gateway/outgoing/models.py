"""Outgoing transfers and the signing rounds (batches) they travel in.

One batch is one signing request: the document the gateway hands out is stored as
issued (its digest covers it), and the signed response is accepted for it whole or not
at all. One outgoing transfer is one on-chain transaction from one of our addresses
(derived at `source_path`); `depends_on` orders them within a batch (a fee top-up is
mined before the sweep it pays for is broadcast).

The fee fields are the signed ones (what the signer sees); `fee_paid_base_units` is
what the network charged, from the receipt: gas used times the effective price on EVM, the
burned TRX (energy and bandwidth fees) on Tron.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import Base, BaseUnits


class OutgoingBatch(Base):
    __tablename__ = "outgoing_batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # ob_…; the request_id
    kind: Mapped[str] = mapped_column(String(16))  # sweep | refund | payout | replacement
    network: Mapped[str] = mapped_column(String(16))
    # The signing request exactly as issued (JSON text: its digest is over its content).
    request_document: Mapped[str] = mapped_column(Text)
    request_digest: Mapped[str] = mapped_column(String(71))  # "sha256:" + 64 hex
    # The plan's human summary and inputs: prices, totals, estimated cost (for the page).
    plan_summary: Mapped[dict[str, object]] = mapped_column(JSONB)
    created_by: Mapped[str] = mapped_column(String(80))  # scheduler | cli | usr_…
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The signed response as accepted (JSON text), kept for audit.
    signed_document: Mapped[str | None] = mapped_column(Text)
    canceled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    canceled_by: Mapped[str | None] = mapped_column(String(80))


class OutgoingTransfer(Base):
    __tablename__ = "outgoing_transfers"
    __table_args__ = (
        UniqueConstraint("batch_id", "seq"),
        # Two transactions can share an EVM nonce only as original and replacement.
        Index("ix_outgoing_transfers_tx_hash", "network", "tx_hash", unique=True),
        Index("ix_outgoing_transfers_state", "state", "network"),
        Index("ix_outgoing_transfers_source", "network", "source_address", "nonce"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # ot_…; the tx's id
    batch_id: Mapped[str] = mapped_column(ForeignKey("outgoing_batches.id"))
    seq: Mapped[int] = mapped_column(Integer)  # order within the batch
    purpose: Mapped[str] = mapped_column(String(24))  # the signer's Purpose
    state: Mapped[str] = mapped_column(String(24))  # OutgoingState
    network: Mapped[str] = mapped_column(String(16))
    chain_id: Mapped[int | None] = mapped_column(BigInteger)  # EVM only
    source_address: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str] = mapped_column(String(64))
    destination_address: Mapped[str | None] = mapped_column(String(64))  # None: a stake
    destination_path: Mapped[str | None] = mapped_column(String(64))  # set when ours
    asset: Mapped[str] = mapped_column(String(12))  # USDT, USDC, ETH, BNB, TRX
    token_contract: Mapped[str | None] = mapped_column(String(64))  # None: native coin
    decimals: Mapped[int] = mapped_column(Integer)
    amount_base_units: Mapped[int] = mapped_column(BaseUnits)
    depends_on: Mapped[str | None] = mapped_column(ForeignKey("outgoing_transfers.id"))
    # What it is for: the intent, refund or payout whose money this moves (sweeps: None).
    reference: Mapped[str | None] = mapped_column(String(40))
    # Refunds and payouts: the merchant whose balance pays (migration 0009).
    merchant_id: Mapped[str | None] = mapped_column(String(40))
    # EVM fields as signed.
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    gas_limit: Mapped[int | None] = mapped_column(BigInteger)
    max_fee_per_gas: Mapped[int | None] = mapped_column(BaseUnits)  # Ethereum (EIP-1559)
    max_priority_fee_per_gas: Mapped[int | None] = mapped_column(BaseUnits)
    gas_price: Mapped[int | None] = mapped_column(BaseUnits)  # BSC (legacy, EIP-155)
    # Tron fields as signed.
    tron_contract_type: Mapped[str | None] = mapped_column(String(32))
    ref_block_bytes: Mapped[str | None] = mapped_column(String(4))
    ref_block_hash: Mapped[str | None] = mapped_column(String(16))
    expiration_ms: Mapped[int | None] = mapped_column(BigInteger)
    timestamp_ms: Mapped[int | None] = mapped_column(BigInteger)
    fee_limit: Mapped[int | None] = mapped_column(BaseUnits)
    resource: Mapped[str | None] = mapped_column(String(16))  # ENERGY | BANDWIDTH
    lock: Mapped[bool | None] = mapped_column(Boolean)
    lock_period: Mapped[int | None] = mapped_column(BigInteger)
    # The plan's cost: worst case (what the signer caps) and the estimate it planned on.
    max_fee_base_units: Mapped[int] = mapped_column(BaseUnits)
    estimated_fee_base_units: Mapped[int] = mapped_column(BaseUnits)
    estimated_energy: Mapped[int | None] = mapped_column(BigInteger)  # Tron
    estimated_bandwidth: Mapped[int | None] = mapped_column(BigInteger)  # Tron
    # The signed transaction: stored before any broadcast.
    tx_hash: Mapped[str | None] = mapped_column(String(80))
    signed_hex: Mapped[str | None] = mapped_column(Text)
    broadcast_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    first_broadcast_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_broadcast_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_broadcast_error: Mapped[str | None] = mapped_column(Text)
    # From the chain watcher's facts.
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(80))
    mined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    receipt_status: Mapped[str | None] = mapped_column(String(16))  # success | reverted
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    effective_gas_price: Mapped[int | None] = mapped_column(BaseUnits)
    energy_used: Mapped[int | None] = mapped_column(BigInteger)
    bandwidth_used: Mapped[int | None] = mapped_column(BigInteger)
    fee_paid_base_units: Mapped[int | None] = mapped_column(BaseUnits)  # native coin
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # The highest `chain.tx.*` sequence applied (the watcher numbers its events per hash,
    # and a transfer has one hash): an older fact delivered late is dropped.
    chain_sequence: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # An EVM fee bump (same nonce) or a Tron re-plan after expiry points at what it redoes.
    replaces: Mapped[str | None] = mapped_column(ForeignKey("outgoing_transfers.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
