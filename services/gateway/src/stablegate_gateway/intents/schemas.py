"""Request and response shapes of the payment-intents resource.

The request model checks shape only (types, lengths, unknown fields); rules that need the
asset registry or settings (network, asset, amount precision, expiry bounds) are checked
by `intents.service`. Response models document what `intents.presenter` builds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40)]
MetadataValue = Annotated[str, StringConstraints(max_length=500)]

CREATE_EXAMPLE: dict[str, Any] = {
    "amount": "25.00",
    "currency": "USDT",
    "network": "ethereum",
    "expires_in": 3600,
    "reference": "order-1042",
    "description": "2 x T-shirt",
    "metadata": {"customer_id": "cus_881"},
}


class CreatePaymentIntent(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": CREATE_EXAMPLE})

    amount: str = Field(
        description='amount due in token units, a decimal string ("25.00"); never a JSON number',
        examples=["25.00"],
    )
    currency: str = Field(
        max_length=16, description="the token to be paid: `USDT` or `USDC`", examples=["USDT"]
    )
    network: str = Field(
        max_length=32,
        description="`ethereum`, `bsc` or `tron` (see `GET /v1/networks`)",
        examples=["ethereum"],
    )
    asset: str | None = Field(
        None, max_length=16, description="optional; when given it must equal `currency`"
    )
    expires_in: int | None = Field(
        None, description="seconds until the intent expires (default 3600)", examples=[3600]
    )
    reference: str | None = Field(
        None, max_length=200, description="your order id; filterable in lists"
    )
    description: str | None = Field(None, max_length=1000, description="shown on the checkout page")
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict,
        max_length=50,
        description="up to 50 string keys (40 characters) with string values (500 characters)",
    )


class TransferOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(examples=["tr_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4"])
    object: Literal["transfer"]
    tx_hash: str
    log_index: int
    block_number: int
    from_address: str
    amount: str = Field(description="decimal string in token units", examples=["25.00"])
    amount_base_units: str = Field(description="integer string", examples=["25000000"])
    confirmations: int
    status: Literal["pending", "confirmed", "reverted"]


class PaymentIntentOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(examples=["pi_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4"])
    object: Literal["payment_intent"]
    status: Literal[
        "awaiting_payment",
        "confirming",
        "partially_paid",
        "paid",
        "requires_action",
        "expired",
        "canceled",
    ]
    exception: str | None = Field(
        description="why the status needs attention: overpaid, underpaid, paid_late, wrong_asset"
    )
    network: str = Field(examples=["ethereum"])
    asset: str = Field(examples=["USDT"])
    currency: str = Field(examples=["USDT"])
    token_contract: str = Field(examples=["0xdAC17F958D2ee523a2206206994597C13D831ec7"])
    decimals: int = Field(examples=[6])
    amount: str = Field(examples=["25.00"])
    amount_base_units: str = Field(examples=["25000000"])
    amount_received: str = Field(description="seen on chain, final or not", examples=["0.00"])
    amount_confirmed: str = Field(description="final on chain", examples=["0.00"])
    amount_remaining: str = Field(description="still due", examples=["25.00"])
    deposit_address: str = Field(examples=["0x9858EfFD232B4033E47d90003D41EC34EcaEda94"])
    payment_uri: str | None = Field(
        description="EIP-681 URI for wallets and QR codes (EVM networks)",
        examples=[
            "ethereum:0xdAC17F958D2ee523a2206206994597C13D831ec7@1/transfer?"
            "address=0x9858EfFD232B4033E47d90003D41EC34EcaEda94&uint256=25000000"
        ],
    )
    checkout_url: str = Field(
        examples=["https://pay.example.com/pay/pi_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4"]
    )
    confirmations_required: int = Field(examples=[12])
    expires_at: str = Field(examples=["2026-11-27T13:00:00.000000Z"])
    created_at: str = Field(examples=["2026-11-27T12:00:00.000000Z"])
    reference: str | None
    description: str | None
    metadata: dict[str, str]
    transfers: list[TransferOut]


class PaymentIntentList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[PaymentIntentOut]
    has_more: bool
    url: Literal["/v1/payment_intents"]
