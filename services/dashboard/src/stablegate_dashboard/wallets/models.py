"""Deposit addresses the gateway derived, and merchant balances per network and asset."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import BaseUnits
from stablegate_dashboard.db import DashboardBase


class DepositAddressView(DashboardBase):
    __tablename__ = "deposit_addresses"

    family: Mapped[str] = mapped_column(String(8), primary_key=True)  # evm | tron
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    derivation_index: Mapped[int] = mapped_column(Integer)
    provisioned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # event time


class BalanceView(DashboardBase):
    __tablename__ = "balances"

    merchant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    network: Mapped[str] = mapped_column(String(16), primary_key=True)
    asset: Mapped[str] = mapped_column(String(8), primary_key=True)
    decimals: Mapped[int] = mapped_column(Integer)
    available_base_units: Mapped[int] = mapped_column(BaseUnits)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # event time
    sequence: Mapped[int] = mapped_column(BigInteger)
