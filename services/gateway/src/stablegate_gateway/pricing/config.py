"""Pricing and fee configuration (env prefix `GATEWAY_`): the rate feed, its cache and
staleness limit, the de-peg band, the fiat currencies accepted, the default merchant fee
schedule, and per network the network-fee model, its inputs and its coefficient.

Money and rates are Decimal and are read from strings (or integers); a JSON number with
a fraction is refused, so no binary float ever becomes a price. docs/pricing.md describes
every variable with examples.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stablegate_gateway.core.fees import (
    Eip1559Gas,
    FeePayer,
    FeeSchedule,
    LegacyGas,
    NetworkCost,
    TronResources,
)

GWEI_DECIMALS = 9


def _exact_decimal(value: object) -> object:
    """Strings and ints become Decimal; floats are refused (they are not exact)."""
    if isinstance(value, bool | float):
        raise ValueError('write decimals as strings, e.g. "1.0001", not JSON numbers')
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
    return value


ExactDecimal = Annotated[Decimal, BeforeValidator(_exact_decimal)]
NonNegative = Annotated[ExactDecimal, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[ExactDecimal, Field(gt=0, allow_inf_nan=False)]


def _whole_wei(gwei: Decimal) -> Decimal:
    exponent = gwei.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -GWEI_DECIMALS:
        raise ValueError(f"{gwei} gwei has a fraction of a wei")
    return gwei


Gwei = Annotated[NonNegative, AfterValidator(_whole_wei)]

# Development prices: stablecoins at par, EUR, and the native coins that network fees are
# paid in. Production configures a live feed (GATEWAY_RATES_PROVIDER=http).
DEVELOPMENT_RATES: dict[str, Decimal] = {
    "USDT/USD": Decimal("1.0000"),
    "USDC/USD": Decimal("1.0000"),
    "EUR/USD": Decimal("1.0800"),
    "ETH/USD": Decimal("3000"),
    "BNB/USD": Decimal("600"),
    "TRX/USD": Decimal("0.25"),
}


class _FeeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Eip1559Config(_FeeModel):
    """Ethereum: gas of a token transfer, base fee and priority tip in gwei."""

    model: Literal["eip1559"]
    gas: int = Field(65_000, gt=0)
    base_fee_gwei: Gwei = Decimal(10)
    priority_fee_gwei: Gwei = Decimal(1)

    def cost(self) -> NetworkCost:
        return Eip1559Gas(self.gas, _wei(self.base_fee_gwei), _wei(self.priority_fee_gwei))


class LegacyGasConfig(_FeeModel):
    """BSC: gas of a token transfer and the legacy gas price in gwei."""

    model: Literal["legacy"]
    gas: int = Field(65_000, gt=0)
    gas_price_gwei: Gwei = Decimal("0.1")

    def cost(self) -> NetworkCost:
        return LegacyGas(self.gas, _wei(self.gas_price_gwei))


class TronConfig(_FeeModel):
    """Tron: energy and bandwidth of a TRC-20 transfer and their prices in sun."""

    model: Literal["tron"]
    # A USDT transfer to an address that already holds USDT (a merchant's sweep wallet);
    # an empty recipient costs about 130,285 (chains.md §3.5).
    energy: int = Field(64_285, ge=0)
    energy_price_sun: int = Field(100, ge=0)
    bandwidth: int = Field(345, ge=0)
    bandwidth_price_sun: int = Field(1000, ge=0)

    def cost(self) -> NetworkCost:
        return TronResources(
            self.energy, self.energy_price_sun, self.bandwidth, self.bandwidth_price_sun
        )


FeeModelConfig = Annotated[
    Eip1559Config | LegacyGasConfig | TronConfig, Field(discriminator="model")
]

DEFAULT_FEE_INPUTS: dict[str, Eip1559Config | LegacyGasConfig | TronConfig] = {
    "ethereum": Eip1559Config(model="eip1559"),
    "bsc": LegacyGasConfig(model="legacy"),
    "tron": TronConfig(model="tron"),
}


class PricingConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    rates_provider: Literal["static", "http"] = Field(
        "static", description="`static` (GATEWAY_RATES_STATIC) or `http` (GATEWAY_RATES_URL)"
    )
    rates_static: dict[str, ExactDecimal] = Field(
        default_factory=lambda: dict(DEVELOPMENT_RATES),
        description='JSON pairs, e.g. {"USDT/USD": "1.0000", "EUR/USD": "1.0800"}',
    )
    rates_url: str = Field("", description="the HTTP feed (format in docs/pricing.md)")
    rates_source: str = Field(
        "", max_length=64, description="`rate_source` shown on intents; default: static or host"
    )
    rates_timeout_seconds: float = Field(5.0, gt=0)
    rates_ttl_seconds: float = Field(30.0, gt=0, description="how long a fetched table is reused")
    rates_max_age_seconds: float = Field(
        300.0, gt=0, description="older rates are stale: no quote (503 rates_unavailable)"
    )
    rates_max_lock_seconds: int = Field(
        86_400, ge=60, description="longest `expires_in` of a fiat-priced intent (rate lock)"
    )
    depeg_band: Positive = Field(
        Decimal("0.02"), lt=1, description="a stablecoin priced outside 1.00 ± this is refused"
    )
    fiat_currencies: dict[str, int] = Field(
        default_factory=lambda: {"USD": 2, "EUR": 2},
        description="accepted fiat codes and their decimal places",
    )
    fee_payer: FeePayer = Field(FeePayer.MERCHANT, description="default for merchants")
    fee_percent: NonNegative = Field(Decimal(0), le=100)
    fee_fixed: NonNegative = Decimal(0)
    fee_min: NonNegative = Decimal(0)
    fee_max: NonNegative | None = None
    fee_network_coefficients: dict[str, NonNegative] = Field(
        default_factory=dict, description='per network, default 1: {"ethereum": "1.2"}'
    )
    fee_inputs: dict[str, FeeModelConfig] = Field(
        default_factory=dict, description="per-network fee model and inputs over the defaults"
    )
    fee_rpc_urls: dict[str, str] = Field(
        default_factory=dict, description="EVM networks whose gas price is read from this node"
    )
    fee_rpc_timeout_seconds: float = Field(5.0, gt=0)
    fee_inputs_ttl_seconds: float = Field(15.0, gt=0)
    fee_inputs_max_age_seconds: float = Field(120.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.rates_provider == "http" and not self.rates_url.strip():
            raise ValueError("GATEWAY_RATES_URL is required when GATEWAY_RATES_PROVIDER=http")
        if self.rates_max_age_seconds < self.rates_ttl_seconds:
            raise ValueError("GATEWAY_RATES_MAX_AGE_SECONDS must not be below the TTL")
        bad = [code for code, places in self.fiat_currencies.items() if not 0 <= places <= 6]
        if bad or any(len(code) != 3 or not code.isalpha() for code in self.fiat_currencies):
            raise ValueError("GATEWAY_FIAT_CURRENCIES maps 3-letter codes to 0-6 decimal places")
        self.fiat_currencies = {k.upper(): v for k, v in self.fiat_currencies.items()}
        self.default_schedule()  # refuses a maximum below the minimum now, not per request
        return self

    def default_schedule(self) -> FeeSchedule:
        try:
            return FeeSchedule(self.fee_percent, self.fee_fixed, self.fee_min, self.fee_max)
        except ValueError as exc:
            raise ValueError(f"GATEWAY_FEE_*: {exc}") from exc

    def fee_model(self, network: str) -> Eip1559Config | LegacyGasConfig | TronConfig | None:
        return self.fee_inputs.get(network) or DEFAULT_FEE_INPUTS.get(network)

    def coefficient(self, network: str) -> Decimal:
        return self.fee_network_coefficients.get(network, Decimal(1))


def _wei(gwei: Decimal) -> int:
    return int(gwei.scaleb(GWEI_DECIMALS))  # whole by `_whole_wei`
