"""The intent read models: one row per intent (the newest snapshot the gateway
published), every snapshot as a timeline entry, and which intent claims each transfer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import BaseUnits
from stablegate_dashboard.db import DashboardBase


class IntentView(DashboardBase):
    __tablename__ = "intents"
    __table_args__ = (
        Index("ix_intents_status_id", "status", "id"),
        Index("ix_intents_created_at", "created_at"),
        Index("ix_intents_paid_at", "paid_at"),
        Index("ix_intents_reference", "reference"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(24))
    exception: Mapped[str | None] = mapped_column(String(24))
    network: Mapped[str] = mapped_column(String(16))
    asset: Mapped[str] = mapped_column(String(8))
    token_contract: Mapped[str] = mapped_column(String(64))
    decimals: Mapped[int] = mapped_column(Integer)
    amount_base_units: Mapped[int] = mapped_column(BaseUnits)
    amount_received_base_units: Mapped[int] = mapped_column(BaseUnits)
    amount_confirmed_base_units: Mapped[int] = mapped_column(BaseUnits)
    deposit_address: Mapped[str] = mapped_column(String(64), index=True)
    reference: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB)
    # The snapshot's transfers as published (amounts as strings), for the detail view.
    transfers: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When the intent became paid (the event time); cleared if a reorg takes it back.
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # event time
    sequence: Mapped[int] = mapped_column(BigInteger)


class IntentEventView(DashboardBase):
    """One row per snapshot, whatever order they arrived in: the intent's timeline.
    `position` orders rows by arrival and is the cursor of the live feed."""

    __tablename__ = "intent_events"

    intent_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(24))
    previous_status: Mapped[str | None] = mapped_column(String(24))
    exception: Mapped[str | None] = mapped_column(String(24))
    amount_received_base_units: Mapped[int] = mapped_column(BaseUnits)
    amount_confirmed_base_units: Mapped[int] = mapped_column(BaseUnits)
    transfer_count: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TransferClaimView(DashboardBase):
    """Which intent counted a transfer (from the intents' snapshots): lets a search by
    transaction hash find its intent and the transfer list tell attributed from
    unsolicited."""

    __tablename__ = "transfer_claims"
    __table_args__ = (Index("ix_transfer_claims_tx_hash", "tx_hash"),)

    network: Mapped[str] = mapped_column(String(16), primary_key=True)
    tx_hash: Mapped[str] = mapped_column(String(80), primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    intent_id: Mapped[str] = mapped_column(String(40), index=True)
    transfer_id: Mapped[str] = mapped_column(String(40))
