"""Sweep configuration (env prefix `GATEWAY_`): thresholds per asset, the dust share, the
gas margin, the schedule, the native-coin prices a plan's USD cost is shown at, whether
Tron energy is delegated, and the nodes the planner reads.

Amounts and prices are Decimal read from strings (a JSON number with a fraction is
refused, as in pricing.config); the planner turns them into base units per asset.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stablegate_common.core.assets import Asset
from stablegate_gateway.pricing.config import ExactDecimal, NonNegative, Positive

NETWORKS = ("ethereum", "bsc", "tron")


class SweepSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    sweep_min_amount: NonNegative = Field(
        Decimal(10), description="an asset balance below this (in asset units) is not swept"
    )
    sweep_min_amounts: dict[str, NonNegative] = Field(
        default_factory=dict,
        description='per network:asset overrides, JSON: {"ethereum:USDT": "50"}',
    )
    sweep_max_fee_share: Positive = Field(
        Decimal("0.05"),
        le=1,
        description="an address whose sweep would cost more than this share of its value is "
        "dust and left where it is",
    )
    sweep_gas_margin: ExactDecimal = Field(
        Decimal("1.25"),
        ge=1,
        le=10,
        allow_inf_nan=False,
        description="gas limits (and Tron energy) are the node's estimate times this",
    )
    sweep_schedule_minutes: int = Field(
        0, ge=0, description="plan sweeps every this many minutes; 0: only on demand"
    )
    native_prices_usd: dict[str, Positive] = Field(
        default_factory=dict,
        description='native coin prices for the plan\'s USD cost, JSON: {"ETH": "3000"}',
    )
    sweep_tron_delegation: Literal["auto", "never"] = Field(
        "auto",
        description="auto: delegate the fee wallet's staked energy where it has enough; "
        "never: always top up TRX that the sweep burns",
    )
    rpc_url_ethereum: str = Field("", description="Ethereum JSON-RPC node the planner reads")
    rpc_url_bsc: str = Field("", description="BSC JSON-RPC node the planner reads")
    tron_api_url: str = Field("", description="java-tron HTTP API (full node) the planner reads")
    tron_solidity_url: str = Field(
        "", description="java-tron solidity HTTP API; empty: the full node serves it"
    )
    chain_timeout_seconds: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for key in self.sweep_min_amounts:
            network, _, symbol = key.partition(":")
            if network not in NETWORKS or not symbol or symbol != symbol.upper():
                raise ValueError(
                    f"GATEWAY_SWEEP_MIN_AMOUNTS: {key!r} is not network:ASSET "
                    f"(network one of {', '.join(NETWORKS)}, e.g. ethereum:USDT)"
                )
        self.native_prices_usd = {k.upper(): v for k, v in self.native_prices_usd.items()}
        return self

    def node_url(self, network: str) -> str:
        urls = {
            "ethereum": self.rpc_url_ethereum,
            "bsc": self.rpc_url_bsc,
            "tron": self.tron_api_url,
        }
        return urls.get(network, "").strip()

    def min_amount(self, network: str, symbol: str) -> Decimal:
        return self.sweep_min_amounts.get(f"{network}:{symbol}", self.sweep_min_amount)

    def min_base_units(self, asset: Asset) -> int:
        """The threshold in the asset's base units, rounded up to a whole unit."""
        scaled = self.min_amount(asset.network, asset.symbol).scaleb(asset.decimals)
        return math.ceil(scaled)

    def native_price(self, symbol: str) -> Decimal | None:
        return self.native_prices_usd.get(symbol.upper())

    @property
    def schedule_seconds(self) -> float | None:
        minutes = self.sweep_schedule_minutes
        return minutes * 60.0 if minutes else None
