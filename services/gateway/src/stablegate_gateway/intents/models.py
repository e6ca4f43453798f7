"""Payment intents: what a merchant asked to be paid, and where it stands."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, Numeric, String, func
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
    # -- the lifecycle (migration 0002) --
    # The underpayment tolerance copied at creation (`intents.tolerance`).
    underpayment_tolerance_percent: Mapped[Decimal] = mapped_column(
        Numeric(7, 4), default=Decimal(0), server_default="0"
    )
    underpayment_tolerance_base_units: Mapped[int] = mapped_column(
        BaseUnits, default=0, server_default="0"
    )
    # Live transfers to the address that cannot count (another token, the other network).
    wrong_asset_transfers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    wrong_network_transfers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When the state machine first saw the intent expired (a status alone cannot say so:
    # a `requires_action/wrong_asset` intent may or may not have expired).
    expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(String(16))  # mark_paid | void
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # -- pricing and fees (migration 0003, `pricing.quotes`) --
    # `amount_base_units` above is the amount due: what the customer must send, the
    # price in the asset plus the fees when the customer pays them.
    currency: Mapped[str] = mapped_column(String(8))  # a fiat code, or the asset's symbol
    amount_requested: Mapped[Decimal | None] = mapped_column(Numeric)  # in `currency`
    rate: Mapped[Decimal | None] = mapped_column(Numeric)  # one asset in `currency`
    rate_source: Mapped[str | None] = mapped_column(String(64))
    rate_locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fee_payer: Mapped[str] = mapped_column(String(8), default="merchant", server_default="merchant")
    network_fee_base_units: Mapped[int] = mapped_column(BaseUnits, default=0, server_default="0")
    processing_fee_base_units: Mapped[int] = mapped_column(BaseUnits, default=0, server_default="0")
    pricing_details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # quote inputs
    # -- the hosted checkout (migration 0005) --
    # Where the checkout page sends the customer back: after paying, or on giving up.
    success_url: Mapped[str | None] = mapped_column(String(2000))
    cancel_url: Mapped[str | None] = mapped_column(String(2000))
    # -- refunds (migration 0009) --
    # Refunds of this intent not failed or canceled (changed under the intent's row lock,
    # so two refunds can never together pass what was received).
    amount_refunded_base_units: Mapped[int] = mapped_column(
        BaseUnits, default=0, server_default="0"
    )


class IntentResolution(Base):
    """Who resolved a `requires_action` intent, how and why: one per intent, for ever."""

    __tablename__ = "payment_intent_resolutions"

    intent_id: Mapped[str] = mapped_column(ForeignKey("payment_intents.id"), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    action: Mapped[str] = mapped_column(String(16))  # mark_paid | void
    reason: Mapped[str] = mapped_column(String(1000))
    exception: Mapped[str | None] = mapped_column(String(24))  # what needed action
    actor_type: Mapped[str] = mapped_column(String(16))  # api_key | token
    api_key_id: Mapped[str] = mapped_column(String(40))  # the key, or the key a JWT came from
    token_subject: Mapped[str | None] = mapped_column(String(200))  # the JWT `sub`, if any
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
