"""Merchants and their API keys (stored as hashes; the secret is shown once)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime, ForeignKey, Numeric, String, func
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import Base


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Default underpayment tolerance, copied onto each new intent (`intents.tolerance`):
    # the larger of this percent of the amount due and this amount in token units.
    underpayment_tolerance_percent: Mapped[Decimal] = mapped_column(
        Numeric(7, 4), default=Decimal(0), server_default="0"
    )
    underpayment_tolerance_amount: Mapped[Decimal] = mapped_column(
        Numeric(38, 18), default=Decimal(0), server_default="0"
    )
    # -- pricing and fees (migration 0003) --
    # The merchant's processing fee (`fees.service`); NULL means the gateway's default
    # (GATEWAY_FEE_*), so changing a default reaches every merchant who kept it.
    fee_percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    fee_fixed: Mapped[Decimal | None] = mapped_column(Numeric(38, 18))
    fee_min: Mapped[Decimal | None] = mapped_column(Numeric(38, 18))
    fee_max: Mapped[Decimal | None] = mapped_column(Numeric(38, 18))
    fee_payer: Mapped[str | None] = mapped_column(String(8))  # merchant | customer
    # -- refunds and payouts (migration 0009) --
    # Above this many token units a refund or payout needs two admins' approvals before
    # it is planned; NULL: the gateway default (GATEWAY_DISBURSEMENT_APPROVAL_LIMIT).
    disbursement_approval_limit: Mapped[Decimal | None] = mapped_column(Numeric(38, 18))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    mode: Mapped[str] = mapped_column(String(8))  # test | live
    prefix: Mapped[str] = mapped_column(String(16))
    last4: Mapped[str] = mapped_column(String(4))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
