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
# The checkout page links to it, so nothing but an absolute http(s) URL (no `javascript:`).
ReturnUrl = Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://[^\s]+$")]

CREATE_EXAMPLE: dict[str, Any] = {
    "amount": "25.00",
    "currency": "USDT",
    "network": "ethereum",
    "expires_in": 3600,
    "reference": "order-1042",
    "description": "2 x T-shirt",
    "metadata": {"customer_id": "cus_881"},
}


class UnderpaymentToleranceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    percent: str | None = Field(
        None,
        description="a shortfall up to this percent of the amount due still pays the intent; "
        'a decimal string from "0" to below "100", at most 4 decimal places',
        examples=["0.5"],
    )
    amount: str | None = Field(
        None,
        description="a shortfall up to this many token units still pays the intent; a "
        "decimal string in the intent's token",
        examples=["0.10"],
    )


STATUS_DESCRIPTION = (
    "`awaiting_payment`: nothing received yet. `confirming`: a transfer is seen, not final. "
    "`partially_paid`: final funds are below the amount due (beyond the tolerance); top-ups "
    "are accepted until expiry. `paid`: final funds cover the amount due (or fall short by "
    "no more than `underpayment_tolerance`, then `amount_remaining` shows the shortfall "
    "accepted): fulfil the order. `requires_action`: a person must decide, see `exception`, "
    "then `POST …/resolve`. `expired`: expiry passed with nothing received. `canceled`: "
    "canceled before any funds, or voided through `resolve` (`exception` then keeps why)."
)
EXCEPTION_DESCRIPTION = (
    "With `paid`: `overpaid` (more than due arrived), `wrong_asset`/`wrong_network` "
    "(another token, or the other EVM network, also paid this address). With "
    "`requires_action`: `underpaid` (expired holding less than due), `paid_late` (funds "
    "arrived only after expiry or cancelation, while the address was cooling down), "
    "`wrong_asset` (a registered token other than the intent's was sent to its address; "
    "never counted), `wrong_network` (the address was paid on the other EVM network: "
    "Ethereum for a BSC intent or the reverse; never counted). Kept after `resolve`."
)


class CreatePaymentIntent(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": CREATE_EXAMPLE})

    amount: str = Field(
        description='the price in `currency`, a decimal string ("25.00"); never a JSON number',
        examples=["25.00"],
    )
    currency: str = Field(
        max_length=16,
        description="what `amount` is in: the token to be paid (`USDT`, `USDC`), or a fiat "
        "code (`USD`, `EUR`) converted to `asset` at a rate locked until expiry",
        examples=["USDT", "EUR"],
    )
    network: str = Field(
        max_length=32,
        description="`ethereum`, `bsc` or `tron` (see `GET /v1/networks`)",
        examples=["ethereum"],
    )
    asset: str | None = Field(
        None,
        max_length=16,
        description="the token to be paid; required when `currency` is a fiat code, "
        "otherwise optional and equal to `currency`",
        examples=["USDT"],
    )
    fee_payer: Literal["merchant", "customer"] | None = Field(
        None,
        description="who pays the fees (`fees`): `customer` adds them to `amount_due`; "
        "`merchant` (the default unless the merchant's settings say otherwise) only reports them",
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
    success_url: ReturnUrl | None = Field(
        None,
        description="where the hosted checkout sends the customer once the intent is paid "
        "(http or https)",
        examples=["https://shop.example.com/orders/1042/thanks"],
    )
    cancel_url: ReturnUrl | None = Field(
        None,
        description="where the hosted checkout sends a customer who gives up, or whose "
        "payment expired or was canceled (http or https)",
        examples=["https://shop.example.com/cart"],
    )
    underpayment_tolerance: UnderpaymentToleranceIn | None = Field(
        None,
        description="replaces the merchant's default for this intent (a key left out counts "
        "as zero): a final amount short of the amount due by no more than the larger of "
        "`percent` of it and `amount` is `paid`",
        examples=[{"percent": "0.5", "amount": "0.10"}],
    )


class UnderpaymentToleranceOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    percent: str = Field(examples=["0.5"])
    amount: str = Field(examples=["0.10"])


class ResolutionOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["mark_paid", "void"]
    resolved_at: str = Field(examples=["2026-11-27T14:00:00.000000Z"])


class FeesOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field(description="the asset the fees are counted in", examples=["USDT"])
    network_fee: str = Field(
        description="estimated cost of moving the payment on chain, times the network's "
        "coefficient",
        examples=["0.42"],
    )
    processing_fee: str = Field(
        description="the merchant's percent and fixed fee", examples=["0.35"]
    )
    total: str = Field(examples=["0.77"])


class TransferOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(examples=["tr_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4"])
    object: Literal["transfer"]
    network: str = Field(
        description="the network it was sent on; differs from the intent's for a "
        "`wrong_network` transfer",
        examples=["ethereum"],
    )
    asset: str | None = Field(
        description="the token sent; differs from the intent's for a `wrong_asset` transfer, "
        "which is shown but never counted",
        examples=["USDT"],
    )
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
    ] = Field(description=STATUS_DESCRIPTION)
    exception: (
        Literal["overpaid", "underpaid", "paid_late", "wrong_asset", "wrong_network"] | None
    ) = Field(description=EXCEPTION_DESCRIPTION)
    network: str = Field(examples=["ethereum"])
    asset: str = Field(examples=["USDT"])
    currency: str = Field(examples=["USDT"])
    token_contract: str = Field(examples=["0xdAC17F958D2ee523a2206206994597C13D831ec7"])
    decimals: int = Field(examples=[6])
    amount: str = Field(description="the price asked, in `currency`", examples=["25.00"])
    amount_due: str = Field(
        description="what the customer must send, in `asset`: `amount` converted at `rate` "
        "(rounded up to the token's precision), plus `fees.total` when `fee_payer` is "
        "`customer`",
        examples=["25.00"],
    )
    amount_base_units: str = Field(
        description="`amount_due` in the token's base units (what `payment_uri` asks for)",
        examples=["25000000"],
    )
    rate: str | None = Field(
        description="for a fiat `currency`: one `asset` in `currency`, locked at creation",
        examples=["0.925925925926"],
    )
    rate_source: str | None = Field(description="the feed `rate` came from", examples=["static"])
    rate_locked_until: str | None = Field(
        description="the rate holds until then (the intent's expiry)",
        examples=["2026-11-27T13:00:00.000000Z"],
    )
    fees: FeesOut
    fee_payer: Literal["merchant", "customer"]
    amount_received: str = Field(description="seen on chain, final or not", examples=["0.00"])
    amount_confirmed: str = Field(description="final on chain", examples=["0.00"])
    amount_remaining: str = Field(description="still due", examples=["25.00"])
    amount_refunded: str = Field(
        description="refunds of this intent not failed or canceled", examples=["0.00"]
    )
    amount_refundable: str = Field(
        description="confirmed funds less `amount_refunded`: what a refund may still return",
        examples=["25.00"],
    )
    deposit_address: str = Field(examples=["0x9858EfFD232B4033E47d90003D41EC34EcaEda94"])
    payment_uri: str | None = Field(
        description="EIP-681 URI for wallets and QR codes on EVM networks; on Tron, which "
        "has no standard payment URI, the bare base58 deposit address",
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
    success_url: str | None = Field(description="the checkout's return link after payment")
    cancel_url: str | None = Field(description="the checkout's return link when giving up")
    underpayment_tolerance: UnderpaymentToleranceOut
    resolution: ResolutionOut | None = Field(
        description="set once a person resolved the intent through `POST …/resolve`"
    )
    transfers: list[TransferOut]


class PaymentIntentList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[PaymentIntentOut]
    has_more: bool
    url: Literal["/v1/payment_intents"]
