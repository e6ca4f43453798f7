"""Refunds (`re_…`) and payouts (`po_…`): a merchant's money going out (DESIGN.md §8).

One table for both, told apart by `kind`: they share every field, every state and the
whole path (plan → sign offline → broadcast → confirm); a refund also names the intent
whose received funds it returns and why. The outgoing transfer that carries it on chain
(`outgoing_transfers.reference` = this id) is its `transfer_id`; the status follows that
transfer's state (`disbursements.states`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import Base, BaseUnits


class Disbursement(Base):
    __tablename__ = "disbursements"
    __table_args__ = (
        Index("ix_disbursements_merchant_kind_id", "merchant_id", "kind", "id"),
        Index("ix_disbursements_intent", "payment_intent_id"),
        Index(
            "ix_disbursements_plannable",
            "network",
            "id",
            postgresql_where="status = 'pending' AND transfer_id IS NULL",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # refund | payout
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    payment_intent_id: Mapped[str | None] = mapped_column(ForeignKey("payment_intents.id"))
    status: Mapped[str] = mapped_column(String(24))  # DisbursementStatus
    network: Mapped[str] = mapped_column(String(16))
    asset: Mapped[str] = mapped_column(String(8))
    token_contract: Mapped[str] = mapped_column(String(64))
    decimals: Mapped[int] = mapped_column(Integer)
    amount_base_units: Mapped[int] = mapped_column(BaseUnits)
    destination_address: Mapped[str] = mapped_column(String(64))  # canonical form
    reason: Mapped[str | None] = mapped_column(String(32))  # refunds
    description: Mapped[str | None] = mapped_column(String(1000))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    # Who pays the network fee: the merchant (booked as fee expense; the default).
    fee_payer: Mapped[str] = mapped_column(String(8), default="merchant")
    # From the plan: where the funds come from (the intent's deposit address, or the
    # network's payout wallet) and the transfer that carries them.
    source: Mapped[str | None] = mapped_column(String(16))  # deposit_address | payout_wallet
    source_address: Mapped[str | None] = mapped_column(String(64))
    transfer_id: Mapped[str | None] = mapped_column(ForeignKey("outgoing_transfers.id"))
    tx_hash: Mapped[str | None] = mapped_column(String(80))
    network_fee_base_units: Mapped[int | None] = mapped_column(BaseUnits)  # native coin
    failure_reason: Mapped[str | None] = mapped_column(String(1000))
    # Four eyes: above the merchant's limit it needs two admins' approvals to be planned.
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    approvals: Mapped[list[dict[str, str]]] = mapped_column(JSONB, default=list)
    created_by: Mapped[str] = mapped_column(String(80))  # the API key (key_…)
    canceled_by: Mapped[str | None] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(Integer, default=1)  # the per-object event sequence
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
