"""One row per payment intent, copied from the gateway's newest snapshot."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import BaseUnits
from stablegate_dashboard.db import DashboardBase


class IntentView(DashboardBase):
    __tablename__ = "intents"
    __table_args__ = (Index("ix_intents_status_id", "status", "id"),)

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
    # The snapshot's transfers as published (amounts as strings), for the detail view.
    transfers: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # event time
    sequence: Mapped[int] = mapped_column(BigInteger)
