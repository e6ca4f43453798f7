"""The token buckets, one row per API key (an UNLOGGED table: losing it in a crash only
refills every bucket, which is not worth a write-ahead log entry per request)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Double, String
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import Base


class RateLimitBucket(Base):
    __tablename__ = "rate_limit_buckets"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    bucket: Mapped[str] = mapped_column(String(80), primary_key=True)
    tokens: Mapped[float] = mapped_column(Double)  # not money: a request count, fractions refill
    allowed: Mapped[bool] = mapped_column(Boolean)  # the outcome of the last take
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
