"""The HTTP rate feed against a real server on 127.0.0.1 (`rate_feed`): the documented
format parsed, every malformed answer refused, and `Pricing` caching the table for its
TTL and refusing to quote once it is stale (503 `rates_unavailable`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from stablegate_common.config import ConfigurationError, load_settings
from stablegate_common.core.assets import MAINNET, AssetRegistry
from stablegate_gateway.core.fees import FeePayer
from stablegate_gateway.core.rates import RatesUnavailable
from stablegate_gateway.fees.inputs import NetworkFeeInputBook
from stablegate_gateway.pricing.config import DEFAULT_FEE_INPUTS, LegacyGasConfig, PricingConfig
from stablegate_gateway.pricing.providers import HttpRates, RateFeedError
from stablegate_gateway.pricing.service import Pricing
from stablegate_gateway.settings import GatewaySettings
from tests.fixtures.ratefeed import RateFeed, closed_port_url

REGISTRY = AssetRegistry.from_mapping(MAINNET)


@pytest.fixture
async def http_rates(rate_feed: RateFeed) -> AsyncIterator[HttpRates]:
    provider = HttpRates(rate_feed.url, timeout_seconds=2)
    try:
        yield provider
    finally:
        await provider.close()


async def test_the_documented_format_is_read(rate_feed: RateFeed, http_rates: HttpRates) -> None:
    rate_feed.age = timedelta(seconds=30)
    table = await http_rates.fetch()
    assert table.source == "test-feed"
    assert table.rates["USDC/USD"] == Decimal("0.9998")
    assert table.rate("USDT", "EUR") == Decimal("0.925925925926")
    age = datetime.now(UTC) - table.as_of
    assert timedelta(seconds=29) <= age <= timedelta(seconds=35)


async def test_the_source_defaults_to_the_feed_host(
    rate_feed: RateFeed, http_rates: HttpRates
) -> None:
    rate_feed.source = None
    assert (await http_rates.fetch()).source == "127.0.0.1"


async def test_a_feed_clock_running_ahead_does_not_extend_its_prices(
    rate_feed: RateFeed, http_rates: HttpRates
) -> None:
    rate_feed.age = -timedelta(hours=1)
    assert (await http_rates.fetch()).as_of <= datetime.now(UTC)


BAD_ANSWERS: list[tuple[str, Callable[[RateFeed], None], str]] = [
    ("a JSON number", lambda f: f.rates.update({"USDT/USD": 1.0001}), "decimal string"),
    ("an exponent", lambda f: f.rates.update({"USDT/USD": "1e0"}), "decimal string"),
    ("a zero rate", lambda f: f.rates.update({"ETH/USD": "0"}), "decimal string|greater"),
    ("a bad pair", lambda f: f.rates.update({"USDTUSD": "1"}), "not a pair"),
    ("no as_of", lambda f: setattr(f, "raw", '{"rates": {}}'), "as_of"),
    (
        "as_of without zone",
        lambda f: setattr(f, "raw", '{"rates": {}, "as_of": "2026-11-27T12:00:00"}'),
        "no time zone",
    ),
    ("as_of not a time", lambda f: setattr(f, "raw", '{"rates": {}, "as_of": "noon"}'), "RFC"),
    ("rates not an object", lambda f: setattr(f, "raw", '{"rates": []}'), "`rates` object"),
    ("not JSON", lambda f: setattr(f, "raw", "<html>maintenance</html>"), "not JSON"),
    ("HTTP 500", lambda f: setattr(f, "status", 500), "500"),
    ("HTTP 404", lambda f: setattr(f, "status", 404), "404"),
    ("an empty source", lambda f: setattr(f, "source", " "), "source"),
]


@pytest.mark.parametrize(
    ("label", "spoil", "message"), BAD_ANSWERS, ids=[row[0] for row in BAD_ANSWERS]
)
async def test_a_malformed_answer_is_a_feed_error(
    rate_feed: RateFeed,
    http_rates: HttpRates,
    label: str,
    spoil: Callable[[RateFeed], None],
    message: str,
) -> None:
    spoil(rate_feed)
    with pytest.raises(RateFeedError, match=message):
        await http_rates.fetch()


async def test_a_feed_that_is_down_is_a_feed_error() -> None:
    provider = HttpRates(closed_port_url(), timeout_seconds=2)
    try:
        with pytest.raises(RateFeedError, match="Connect"):
            await provider.fetch()
    finally:
        await provider.close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def pricing_for(feed_url: str, clock: Clock, **config: Any) -> Pricing:
    settings = PricingConfig(
        rates_provider="http",
        rates_url=feed_url,
        rates_ttl_seconds=30,
        rates_max_age_seconds=120,
        **config,
    )
    book = NetworkFeeInputBook.from_config(settings, REGISTRY.names())
    return Pricing(settings, HttpRates(feed_url, timeout_seconds=2), book, clock=clock)


async def test_pricing_asks_the_feed_once_per_ttl(rate_feed: RateFeed) -> None:
    clock = Clock()
    pricing = pricing_for(rate_feed.url, clock)
    try:
        for _ in range(5):
            await pricing.market("ethereum")
        assert rate_feed.requests == 1
        clock.now += timedelta(seconds=31)
        rate_feed.rates["USDT/USD"] = "0.9990"
        market = await pricing.market("ethereum")
        assert rate_feed.requests == 2
        assert market.rates.usd_price("USDT") == Decimal("0.9990")
    finally:
        await pricing.close()


async def test_pricing_refuses_to_quote_from_a_stale_feed(rate_feed: RateFeed) -> None:
    clock = Clock()
    pricing = pricing_for(rate_feed.url, clock)
    try:
        await pricing.market("ethereum")
        rate_feed.status = 503  # the feed goes down
        clock.now += timedelta(seconds=100)
        await pricing.market("ethereum")  # the last table is 100 s old: still usable
        clock.now += timedelta(seconds=21)
        with pytest.raises(RatesUnavailable, match="s old, over the 120 s limit") as caught:
            await pricing.market("ethereum")
        assert caught.value.code == "rates_unavailable"
    finally:
        await pricing.close()


async def test_a_feed_publishing_old_prices_is_refused_at_once(rate_feed: RateFeed) -> None:
    rate_feed.age = timedelta(minutes=10)
    pricing = pricing_for(rate_feed.url, Clock())
    try:
        with pytest.raises(RatesUnavailable, match="over the 120 s limit"):
            await pricing.market("tron")
    finally:
        await pricing.close()


def test_production_refuses_the_development_prices() -> None:
    with pytest.raises(ConfigurationError, match="GATEWAY_RATES_STATIC"):
        Pricing.from_config(PricingConfig(), REGISTRY, "production")
    explicit = PricingConfig(rates_static={"USDT/USD": "1", "ETH/USD": "3000"})
    Pricing.from_config(explicit, REGISTRY, "production")  # prices set on purpose: accepted


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"rates_static": {"USDT/USD": 1.0}}, "strings"),
        ({"rates_provider": "http"}, "GATEWAY_RATES_URL is required"),
        ({"rates_ttl_seconds": 60, "rates_max_age_seconds": 30}, "not be below the TTL"),
        ({"fiat_currencies": {"EURO": 2}}, "3-letter codes"),
        ({"fee_min": "2", "fee_max": "1"}, "maximum must not be below"),
        (
            {"fee_inputs": {"ethereum": {"model": "eip1559", "base_fee_gwei": "0.0000000001"}}},
            "wei",
        ),
        ({"fee_inputs": {"bsc": {"model": "gasless"}}}, "model"),
        ({"depeg_band": "1.5"}, "less than 1"),
    ],
)
def test_unusable_pricing_settings_are_refused(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PricingConfig(**config)


def test_a_network_without_a_fee_model_stops_the_start() -> None:
    registry = REGISTRY.overlay(
        {
            "networks": {
                "polygon": {
                    "family": "evm",
                    "chain_id": 137,
                    "confirmations": 64,
                    "native_symbol": "POL",
                    "assets": {},
                }
            }
        }
    )
    with pytest.raises(ConfigurationError, match="no fee model for network 'polygon'"):
        Pricing.from_config(PricingConfig(), registry, "test")
    with pytest.raises(ConfigurationError, match="'tron' is not an EVM network"):
        Pricing.from_config(PricingConfig(fee_rpc_urls={"tron": "http://x"}), REGISTRY, "test")


def test_pricing_is_configured_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_RATES_STATIC", '{"USDT/USD": "0.9990", "ETH/USD": "2500"}')
    monkeypatch.setenv("GATEWAY_FEE_PERCENT", "1.5")
    monkeypatch.setenv("GATEWAY_FEE_PAYER", "customer")
    monkeypatch.setenv("GATEWAY_FEE_NETWORK_COEFFICIENTS", '{"tron": "1.25"}')
    monkeypatch.setenv(
        "GATEWAY_FEE_INPUTS", '{"bsc": {"model": "legacy", "gas": 50000, "gas_price_gwei": "3"}}'
    )
    pricing = load_settings(GatewaySettings, "gateway").pricing
    assert pricing.rates_static == {"USDT/USD": Decimal("0.9990"), "ETH/USD": Decimal(2500)}
    assert (pricing.fee_percent, pricing.fee_payer) == (Decimal("1.5"), FeePayer.CUSTOMER)
    assert (pricing.coefficient("tron"), pricing.coefficient("bsc")) == (
        Decimal("1.25"),
        Decimal(1),
    )
    assert pricing.fee_model("bsc") == LegacyGasConfig(
        model="legacy", gas=50_000, gas_price_gwei=Decimal(3)
    )
    assert pricing.fee_model("ethereum") == DEFAULT_FEE_INPUTS["ethereum"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_RATES_STATIC", '{"USDT/USD": 1.0}'),
        ("GATEWAY_RATES_STATIC", "not json"),
        ("GATEWAY_FEE_PERCENT", "150"),
        ("GATEWAY_DEPEG_BAND", "-0.01"),
    ],
)
def test_a_bad_pricing_variable_stops_the_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load_settings(GatewaySettings, "gateway")
