"""The `transfer` object of a `transfer.unsolicited` event (what `transfers.unsolicited`
builds), for the API documentation and the tests that hold the builder to it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class UnsolicitedTransferOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(examples=["tr_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4"])
    object: Literal["transfer"]
    network: str = Field(examples=["ethereum"])
    asset: str | None = Field(examples=["USDT"])
    token_contract: str = Field(examples=["0xdAC17F958D2ee523a2206206994597C13D831ec7"])
    tx_hash: str
    log_index: int
    block_number: int
    from_address: str
    to_address: str = Field(description="the deposit address that was paid")
    amount: str = Field(description="decimal string in token units", examples=["7.00"])
    amount_base_units: str = Field(description="integer string", examples=["7000000"])
    confirmations: int
    status: Literal["pending", "confirmed", "reverted"]
    payment_intent: str | None = Field(
        description="the intent that held this address last: a hint for finding the "
        "customer; the transfer counts for no intent"
    )
    created_at: str = Field(description="when the gateway first heard of the transfer")
