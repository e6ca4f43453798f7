"""One row per network: the watcher's latest view of its chain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_dashboard.db import DashboardBase


class ChainHeadView(DashboardBase):
    __tablename__ = "chain_heads"

    network: Mapped[str] = mapped_column(String(16), primary_key=True)
    head_block: Mapped[int] = mapped_column(BigInteger)
    scanned_block: Mapped[int] = mapped_column(BigInteger)
    head_timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # event time
    sequence: Mapped[int] = mapped_column(BigInteger)
