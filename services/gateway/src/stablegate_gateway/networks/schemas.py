"""Response shapes of `GET /v1/networks` (documentation; `networks.api` builds the dicts)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class NetworkAssetOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(examples=["USDT"])
    token_contract: str = Field(examples=["0xdAC17F958D2ee523a2206206994597C13D831ec7"])
    decimals: int = Field(examples=[6])


class NetworkOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(examples=["ethereum"])
    object: Literal["network"]
    name: str = Field(examples=["Ethereum (ERC-20)"])
    chain_id: int | None = Field(description="EIP-155 chain id; null for Tron", examples=[1])
    confirmations_required: int = Field(examples=[12])
    native_symbol: str = Field(examples=["ETH"])
    assets: list[NetworkAssetOut]
    head_block: int | None = Field(description="latest block the watcher saw")
    scanned_block: int | None = Field(description="latest block the watcher has scanned")
    watcher_lag_seconds: float | None = Field(description="seconds since the watcher last reported")
    watcher_lag_blocks: int | None = Field(description="blocks between head and scan")
    status: Literal["ok", "lagging", "unknown"] = Field(
        description="`unknown` until the watcher has reported"
    )


class NetworkList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[NetworkOut]
    has_more: Literal[False]
    url: Literal["/v1/networks"]
