"""Payment intents: what a merchant asked to be paid, and where it stands."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import Base, BaseUnits


class PaymentIntent(Base):
    __tablename__ = "payment_intents"
    __table_args__ = (
        Index("ix_payment_intents_merchant_id_id", "merchant_id", "id"),
        Index("ix_payment_intents_deposit_address", "deposit_address", "created_at"),
        Index(
            "ix_payment_intents_open_expiry",
            "expires_at",
            postgresql_where="status IN ('awaiting_payment','partially_paid','confirming')",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    status: Mapped[str] = mapped_column(String(24))
    exception: Mapped[str | None] = mapped_column(String(24))
    network: Mapped[str] = mapped_column(String(16))
    asset: Mapped[str] = mapped_column(String(8))
    token_contract: Mapped[str] = mapped_column(String(64))
    decimals: Mapped[int] = mapped_column(Integer)
    amount_base_units: Mapped[int] = mapped_column(BaseUnits)
    # Derived from the transfers, kept on the row so lists and filters need no join.
    amount_pending_base_units: Mapped[int] = mapped_column(BaseUnits, default=0)
    amount_confirmed_base_units: Mapped[int] = mapped_column(BaseUnits, default=0)
    funded_before_end: Mapped[bool] = mapped_column(default=False)
    deposit_address: Mapped[str] = mapped_column(String(64))
    deposit_address_id: Mapped[str] = mapped_column(ForeignKey("deposit_addresses.id"))
    confirmations_required: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str | None] = mapped_column(String(200), index=True)
    description: Mapped[str | None] = mapped_column(String(1000))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)  # the per-object event sequence
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    canceled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
