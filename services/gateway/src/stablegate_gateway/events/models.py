"""Merchant-facing events (`evt_…`, `payment_intent.paid`, …): what webhooks deliver and
what `GET /v1/events` lists. Written in the same transaction as the change they describe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import Base


class MerchantEvent(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_merchant_id_id", "merchant_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(40), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)  # {"object": {...}}
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
