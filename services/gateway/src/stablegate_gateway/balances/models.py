"""Merchant balances, a read model of the reconciler's ledger (from `balance.updated`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import Base, BaseUnits


class Balance(Base):
    __tablename__ = "balances"

    merchant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    network: Mapped[str] = mapped_column(String(16), primary_key=True)
    asset: Mapped[str] = mapped_column(String(8), primary_key=True)
    decimals: Mapped[int] = mapped_column(Integer)
    available_base_units: Mapped[int] = mapped_column(BaseUnits)
    # Held for refunds and payouts signed and not yet settled (not in `available`).
    reserved_base_units: Mapped[int] = mapped_column(BaseUnits, default=0, server_default="0")
    sequence: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
