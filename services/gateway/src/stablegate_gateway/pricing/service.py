"""`Pricing`: the rate feed behind its cache, the network-fee inputs, and the quote of one
intent. Built once at start (`GatewayContext.pricing`) and closed at shutdown.

The create path calls `market(network)` before it touches the database, then `quote(...)`
with the merchant's fee schedule: a stale feed or a silent node fails the request with a
503 (`rates_unavailable`, `network_fee_unavailable`) and nothing is written.
"""

from __future__ import annotations

from decimal import Decimal

from stablegate_common.config import ConfigurationError, Environment
from stablegate_common.core.assets import AssetRegistry, Network
from stablegate_gateway.core.fees import FeePayer, FeeSchedule
from stablegate_gateway.core.rates import RatesUnavailable, RateTable
from stablegate_gateway.fees.inputs import NetworkFeeInputBook
from stablegate_gateway.pricing.cache import Cached, Clock, StaleValue, utc_now
from stablegate_gateway.pricing.config import PricingConfig
from stablegate_gateway.pricing.providers import HttpRates, RateProvider, StaticRates
from stablegate_gateway.pricing.quotes import Market, PriceQuote, PriceTerms, price


class Pricing:
    def __init__(
        self,
        config: PricingConfig,
        rates: RateProvider,
        fee_inputs: NetworkFeeInputBook,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.config = config
        self._provider = rates
        self._fee_inputs = fee_inputs
        self._rates: Cached[RateTable] = Cached(
            rates.fetch,
            label=f"the rate feed ({rates.name})",
            as_of=lambda table: table.as_of,
            ttl_seconds=config.rates_ttl_seconds,
            max_age_seconds=config.rates_max_age_seconds,
            clock=clock,
        )

    @classmethod
    def from_config(
        cls, config: PricingConfig, registry: AssetRegistry, environment: Environment
    ) -> Pricing:
        """Raises ConfigurationError naming the variable when the configuration is unusable."""
        if (
            environment == "production"
            and config.rates_provider == "static"
            and "rates_static" not in config.model_fields_set
        ):
            raise ConfigurationError(
                "GATEWAY_RATES_PROVIDER=static with the development prices: set "
                "GATEWAY_RATES_STATIC or use GATEWAY_RATES_PROVIDER=http in production"
            )
        try:
            provider = _rate_provider(config)
            fee_inputs = NetworkFeeInputBook.from_config(config, registry.names())
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        return cls(config, provider, fee_inputs)

    async def rates(self) -> RateTable:
        try:
            return await self._rates.get()
        except StaleValue as exc:
            raise RatesUnavailable(f"Exchange rates are unavailable: {exc}.") from exc

    async def market(self, network: str) -> Market:
        """Fresh rates and network-fee inputs for one network, or a 503-class error."""
        rates = await self.rates()
        return Market(rates, await self._fee_inputs.cost(network))

    def quote(
        self,
        terms: PriceTerms,
        market: Market,
        *,
        network: Network,
        schedule: FeeSchedule,
        payer: FeePayer,
    ) -> PriceQuote:
        return price(
            terms,
            market,
            network=network,
            schedule=schedule,
            payer=payer,
            coefficient=self.config.coefficient(network.name),
            depeg_band=self.config.depeg_band,
        )

    async def close(self) -> None:
        await self._provider.close()
        await self._fee_inputs.close()


def _rate_provider(config: PricingConfig) -> RateProvider:
    if config.rates_provider == "http":
        return HttpRates(
            config.rates_url.strip(),
            timeout_seconds=config.rates_timeout_seconds,
            name=config.rates_source.strip(),
        )
    rates: dict[str, Decimal] = dict(config.rates_static)
    return StaticRates(rates, name=config.rates_source.strip() or "static")
