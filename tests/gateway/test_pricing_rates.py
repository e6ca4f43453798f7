"""Rates as the gateway prices with them (`stablegate_gateway.core.rates`) and the cache
in front of a feed (`pricing.cache`): tables of lookups, conversions and de-peg edges,
properties of the rounding, and the cache's TTL and staleness on a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stablegate_common.core.errors import InvalidAmount
from stablegate_gateway.core.rates import (
    AssetDepegged,
    InvalidRate,
    RatesUnavailable,
    RateTable,
    check_peg,
    convert_up,
    format_rate,
    parse_pair,
    parse_rate,
)
from stablegate_gateway.pricing.cache import Cached, StaleValue

D = Decimal
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def table(**pairs: str) -> RateTable:
    rates = {k.replace("_", "/"): v for k, v in pairs.items()}
    return RateTable.parse(rates, as_of=NOW, source="test")


FEED = table(USDT_USD="1.0001", USDC_USD="0.9998", EUR_USD="1.08", USD_JPY="150", ETH_USD="3000")

RATES = [
    # base, quote, one base in quote (12 places)
    ("USDT", "USD", "1.000100000000"),  # quoted
    ("USD", "USDT", "0.999900009999"),  # inverse of a quoted pair
    ("EUR", "USD", "1.080000000000"),
    ("USDT", "EUR", "0.926018518519"),  # via USD: 1.0001 / 1.08
    ("USDC", "EUR", "0.925740740741"),
    ("JPY", "USD", "0.006666666667"),  # only USD/JPY is quoted
    ("USDT", "JPY", "150.015000000000"),
    ("ETH", "USDT", "2999.700029997000"),  # the native coin in the asset, for fees
    ("USDT", "USDT", "1"),
]


@pytest.mark.parametrize(("base", "quote", "expected"), RATES)
def test_rate_lookup(base: str, quote: str, expected: str) -> None:
    assert FEED.rate(base, quote) == D(expected)


def test_a_quoted_cross_pair_wins_over_the_computed_one() -> None:
    feed = table(USDT_USD="1.0", EUR_USD="1.08", USDT_EUR="0.9300")
    assert feed.rate("USDT", "EUR") == D("0.93")


@pytest.mark.parametrize(("base", "quote"), [("GBP", "USD"), ("USDT", "GBP"), ("BNB", "USDT")])
def test_a_missing_rate_is_unavailable_not_guessed(base: str, quote: str) -> None:
    with pytest.raises(RatesUnavailable, match=r"no .*/USD rate") as caught:
        FEED.rate(base, quote)
    assert caught.value.code == "rates_unavailable"


def test_a_rate_too_small_for_twelve_places_is_refused() -> None:
    with pytest.raises(RatesUnavailable, match="too small"):
        table(SHIB_USD="0.0000000000001").rate("SHIB", "USD")


@pytest.mark.parametrize(
    "value", ["1", "1.0001", "3000", "0.25", " 1.08 ", D("1.5")], ids=lambda v: repr(v)
)
def test_rates_parse_from_decimal_strings(value: object) -> None:
    assert parse_rate(value) == D(str(value).strip())


@pytest.mark.parametrize(
    "value",
    [1.0001, 1, "0", "0.000", "-1", "1e3", "1,08", "", "one", None, "NaN", "Infinity", D("-1")],
    ids=lambda v: repr(v),
)
def test_anything_but_a_positive_decimal_string_is_refused(value: object) -> None:
    with pytest.raises(InvalidRate):
        parse_rate(value)


@pytest.mark.parametrize(
    ("text", "pair"), [("USDT/USD", ("USDT", "USD")), (" eth/usd ", ("ETH", "USD"))]
)
def test_pairs(text: str, pair: tuple[str, str]) -> None:
    assert parse_pair(text) == pair


@pytest.mark.parametrize("text", ["USDT", "USDT-USD", "USD/USD", "/USD", "US DT/USD", "A/USD"])
def test_bad_pairs(text: str) -> None:
    with pytest.raises(InvalidRate):
        parse_pair(text)


CONVERSIONS = [
    # amount in currency, rate (currency per token), decimals, token base units
    ("25.00", "1", 6, 25_000_000),
    ("25.00", "1.0001", 6, 24_997_501),  # 24.99750024… rounds up
    ("25.00", "0.999900009999", 6, 25_002_501),
    ("25.00", "0.925925925926", 6, 27_000_000),  # 26.99999999997…: up to 27
    ("25.00", "0.925925925926", 18, 26_999_999_999_997_840_001),
    ("0.01", "3", 6, 3_334),
    ("1", "3", 18, 333_333_333_333_333_334),
    ("10", "2", 6, 5_000_000),  # exact: no rounding
]


@pytest.mark.parametrize(("amount", "rate", "decimals", "expected"), CONVERSIONS)
def test_convert_up(amount: str, rate: str, decimals: int, expected: int) -> None:
    assert convert_up(D(amount), D(rate), decimals) == expected


def test_a_conversion_beyond_uint256_is_refused() -> None:
    with pytest.raises(InvalidAmount, match="too large"):
        convert_up(D(10) ** 60, D("0.000000000001"), 18)


@given(
    st.decimals(min_value=D("0.01"), max_value=D(10**12), places=2),
    st.decimals(min_value=D("0.000001"), max_value=D(10_000), places=12),
    st.sampled_from([6, 18]),
)
def test_the_customer_never_owes_less_than_the_price_nor_a_unit_more(
    amount: Decimal, rate: Decimal, decimals: int
) -> None:
    base_units = convert_up(amount, rate, decimals)
    paid = Fraction(base_units, 10**decimals) * Fraction(rate)
    assert paid >= Fraction(amount)
    assert Fraction(base_units - 1, 10**decimals) * Fraction(rate) < Fraction(amount)


PEG = [
    ("1.0000", True),
    ("0.9800", True),  # the band's edge still counts
    ("1.0200", True),
    ("0.9799", False),
    ("1.0201", False),
    ("0.50", False),
]


@pytest.mark.parametrize(("price", "accepted"), PEG)
def test_depeg_guard(price: str, accepted: bool) -> None:
    if accepted:
        check_peg("USDT", D(price), D("0.02"))
        return
    with pytest.raises(AssetDepegged, match=f"USDT trades at {price} USD") as caught:
        check_peg("USDT", D(price), D("0.02"))
    assert (caught.value.code, caught.value.param) == ("asset_depegged", "asset")


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        ("1", "1.0000"),
        ("1.000100000000", "1.0001"),
        ("0.925925925926", "0.925925925926"),
        ("3000.000000000000", "3000.0000"),
        ("150.015", "150.0150"),
    ],
)
def test_format_rate(rate: str, text: str) -> None:
    assert format_rate(D(rate)) == text


# -- the cache ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Source:
    """Answers with a table dated at the clock's time, or fails when told to."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls = 0
        self.failing = False
        self.lag = timedelta(0)

    async def fetch(self) -> RateTable:
        self.calls += 1
        if self.failing:
            raise ConnectionError("feed down")
        return RateTable(FEED.rates, self.clock() - self.lag, f"call {self.calls}")


def cached(source: Source, clock: Clock) -> Cached[RateTable]:
    return Cached(
        source.fetch,
        label="the test feed",
        as_of=lambda t: t.as_of,
        ttl_seconds=30,
        max_age_seconds=300,
        retry_seconds=5,
        clock=clock,
    )


async def test_the_cache_reuses_a_table_for_its_ttl_then_refreshes() -> None:
    clock = Clock()
    source = Source(clock)
    cache = cached(source, clock)
    assert (await cache.get()).source == "call 1"
    clock.advance(29)
    assert (await cache.get()).source == "call 1"
    clock.advance(1)
    assert (await cache.get()).source == "call 2"
    assert source.calls == 2


async def test_a_failed_refresh_serves_the_last_table_until_it_is_stale() -> None:
    clock = Clock()
    source = Source(clock)
    cache = cached(source, clock)
    await cache.get()
    source.failing = True
    clock.advance(60)
    assert (await cache.get()).source == "call 1"  # 60 s old: still within 300 s
    calls = source.calls
    clock.advance(4)
    await cache.get()
    assert source.calls == calls  # a failing feed is not asked again before 5 s
    clock.advance(300 - 64 + 1)
    with pytest.raises(StaleValue, match=r"301 s old, over the 300 s limit; last error: .*down"):
        await cache.get()
    source.failing = False
    clock.advance(5)
    assert (await cache.get()).as_of == clock.now  # a recovered feed is fresh again


async def test_a_feed_that_answers_with_old_prices_is_stale() -> None:
    clock = Clock()
    source = Source(clock)
    source.lag = timedelta(seconds=301)
    cache = cached(source, clock)
    with pytest.raises(StaleValue, match="301 s old"):
        await cache.get()
    source.lag = timedelta(0)
    clock.advance(5)  # asked again after the retry interval, not after the 30 s TTL
    assert (await cache.get()).as_of == clock.now
    assert source.calls == 2


async def test_a_feed_that_never_answered_is_reported_with_its_error() -> None:
    clock = Clock()
    source = Source(clock)
    source.failing = True
    with pytest.raises(StaleValue, match=r"has not answered yet .*feed down"):
        await cached(source, clock).get()
