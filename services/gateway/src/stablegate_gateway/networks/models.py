"""Each network's head as its watcher last reported it (from `chain.head`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import Base


class NetworkHead(Base):
    __tablename__ = "network_heads"

    network: Mapped[str] = mapped_column(String(16), primary_key=True)
    head_block: Mapped[int] = mapped_column(BigInteger)
    scanned_block: Mapped[int] = mapped_column(BigInteger)
    head_timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
