"""Request shapes of `/v1/refunds` and `/v1/payouts` (shape only: amounts, addresses and
the rules that need the registry or the database are checked by `disbursements.service`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stablegate_gateway.intents.schemas import MetadataKey, MetadataValue

REASONS = ("requested_by_customer", "duplicate", "overpaid", "other")

REFUND_EXAMPLE: dict[str, Any] = {
    "payment_intent": "pi_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4",
    "destination_address": "0x52908400098527886E0F7030069857D2E4169EE7",
    "amount": "5.00",
    "reason": "overpaid",
    "metadata": {"ticket": "T-1042"},
}
PAYOUT_EXAMPLE: dict[str, Any] = {
    "amount": "250.00",
    "asset": "USDT",
    "network": "tron",
    "destination_address": "TLsV52sRDL79HXGGm9yzwKibb6BeruhUzy",
    "description": "supplier invoice 77",
    "metadata": {"invoice": "77"},
}
_METADATA_DESCRIPTION = "up to 50 string keys (40 characters) with string values (500 characters)"


class CreateRefund(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": REFUND_EXAMPLE})

    payment_intent: str = Field(max_length=40, description="the intent whose funds go back")
    destination_address: str = Field(
        max_length=64,
        description="the address the customer gives (never taken from the paying transfer)",
    )
    amount: str | None = Field(
        None,
        description="a decimal string in the intent's asset; default: all that is refundable",
    )
    reason: Literal["requested_by_customer", "duplicate", "overpaid", "other"] | None = None
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict, max_length=50, description=_METADATA_DESCRIPTION
    )


class CreatePayout(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": PAYOUT_EXAMPLE})

    amount: str = Field(description='a decimal string ("250.00"); never a JSON number')
    asset: str = Field(max_length=16, description="`USDT` or `USDC`")
    network: str = Field(max_length=32, description="`ethereum`, `bsc` or `tron`")
    destination_address: str = Field(max_length=64, description="where the payout goes")
    description: str | None = Field(None, max_length=1000)
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict, max_length=50, description=_METADATA_DESCRIPTION
    )


# --- responses (what `disbursements.presenter` builds) -------------------------------------

Status = Literal["pending", "awaiting_signature", "processing", "succeeded", "failed", "canceled"]


class NetworkFeeOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: str | None = Field(
        description="in the native coin; null until mined", examples=["0.000712"]
    )
    amount_base_units: str | None = Field(examples=["712000000000000"])
    asset: str = Field(examples=["ETH"])
    paid_by: Literal["merchant", "customer"] = Field(
        description="`merchant`: booked as the merchant's network-fee expense"
    )


class _DisbursementOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status
    network: str = Field(examples=["ethereum"])
    asset: str = Field(examples=["USDT"])
    token_contract: str = Field(examples=["0xdAC17F958D2ee523a2206206994597C13D831ec7"])
    decimals: int = Field(examples=[6])
    amount: str = Field(examples=["5.00"])
    amount_base_units: str = Field(examples=["5000000"])
    destination_address: str = Field(examples=["0x52908400098527886E0F7030069857D2E4169EE7"])
    tx_hash: str | None = Field(description="once signed", examples=[None])
    network_fee: NetworkFeeOut
    failure_reason: str | None = None
    requires_approval: bool = Field(
        description="above the merchant's limit: two admins approve it before it is planned"
    )
    approvals: int = Field(examples=[0])
    source: Literal["deposit_address", "payout_wallet"] | None = Field(
        description="where the funds are paid from, once planned", examples=["deposit_address"]
    )
    created_at: str = Field(examples=["2026-12-08T10:15:00.000000Z"])
    metadata: dict[str, str]


class RefundOut(_DisbursementOut):
    id: str = Field(examples=["re_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4"])
    object: Literal["refund"]
    payment_intent: str = Field(examples=["pi_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4"])
    reason: Literal["requested_by_customer", "duplicate", "overpaid", "other"]


class PayoutOut(_DisbursementOut):
    id: str = Field(examples=["po_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4"])
    object: Literal["payout"]
    description: str | None = Field(examples=["supplier invoice 77"])


class RefundList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[RefundOut]
    has_more: bool
    url: Literal["/v1/refunds"]


class PayoutList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[PayoutOut]
    has_more: bool
    url: Literal["/v1/payouts"]
