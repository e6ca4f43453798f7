"""Response shapes of `GET /v1/balances` (documentation; `balances.api` builds the dicts)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class BalanceOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["balance"]
    network: str = Field(examples=["ethereum"])
    asset: str = Field(examples=["USDT"])
    decimals: int = Field(examples=[6])
    amount: str = Field(description="confirmed funds, decimal string", examples=["1250.50"])
    amount_base_units: str = Field(examples=["1250500000"])
    available: str = Field(description="the same as `amount`: what payouts may use")
    available_base_units: str
    reserved: str = Field(
        description="held for refunds and payouts signed and not yet confirmed", examples=["0"]
    )
    reserved_base_units: str


class BalanceList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[BalanceOut]
    has_more: Literal[False]
    url: Literal["/v1/balances"]
