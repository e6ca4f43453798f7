"""Exchange rates as the gateway prices with them: a table of quoted pairs, the cross rate
of any two symbols through USD, the fiat-to-token conversion and the de-peg guard.

A pair `BASE/QUOTE` with value `v` means one BASE is worth `v` QUOTE (`EUR/USD` 1.08,
`ETH/USD` 3000). Rates are Decimal, parsed only from strings; no float is ever accepted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

from stablegate_common.core.errors import Conflict, InvalidAmount, ServiceUnavailable
from stablegate_common.core.money import MAX_BASE_UNITS

PIVOT = "USD"
# Locked rates keep 12 decimal places: below any token's smallest unit at realistic
# prices, and short enough to read. The stored rate is the one the amount is computed
# from, so anyone can recompute `amount_due` from what the intent shows.
RATE_PLACES = 12
# Enough digits for a uint256 amount with 18 decimals divided by a 12-place rate.
_WIDE = Context(prec=120)
_PAIR = re.compile(r"^([A-Z0-9]{2,10})/([A-Z0-9]{2,10})$")
_RATE_TEXT = re.compile(r"^[0-9]+(\.[0-9]+)?$")


class RatesUnavailable(ServiceUnavailable):
    """No fresh rate to quote from: the feed is down, silent, or lacks the pair."""

    code = "rates_unavailable"


class AssetDepegged(Conflict):
    """The stablecoin trades too far from 1.00 USD to price anything in it."""

    code = "asset_depegged"


class InvalidRate(ValueError):
    """A rate or pair that is not written the way the feed format says."""


def parse_pair(text: str) -> tuple[str, str]:
    match = _PAIR.match(text.strip().upper())
    if match is None or match.group(1) == match.group(2):
        raise InvalidRate(f"{text!r} is not a pair such as 'USDT/USD'")
    return match.group(1), match.group(2)


def parse_rate(value: object, *, label: str = "rate") -> Decimal:
    """A positive decimal string such as "1.0001"; numbers, exponents and zero refused."""
    if isinstance(value, Decimal) and value.is_finite() and value > 0:
        return value
    if not isinstance(value, str) or not _RATE_TEXT.match(value.strip()):
        raise InvalidRate(f'{label} must be a decimal string such as "1.0001", not {value!r}')
    rate = Decimal(value.strip())
    if rate <= 0:
        raise InvalidRate(f"{label} must be greater than zero")
    return rate


@dataclass(frozen=True)
class RateTable:
    """One snapshot of a feed: its pairs, when the feed says they were true, who said it."""

    rates: Mapping[str, Decimal]
    as_of: datetime
    source: str

    @classmethod
    def parse(cls, rates: Mapping[str, object], *, as_of: datetime, source: str) -> RateTable:
        """Validate every pair and rate; the first bad one raises InvalidRate naming it."""
        parsed: dict[str, Decimal] = {}
        for pair, value in rates.items():
            base, quote = parse_pair(pair)
            parsed[f"{base}/{quote}"] = parse_rate(value, label=f"rate of {pair}")
        return cls(parsed, as_of, source)

    def usd_price(self, symbol: str) -> Decimal:
        """What one unit of `symbol` is worth in USD, from `X/USD` or the inverse `USD/X`."""
        symbol = symbol.upper()
        if symbol == PIVOT:
            return Decimal(1)
        direct = self.rates.get(f"{symbol}/{PIVOT}")
        if direct is not None:
            return direct
        inverse = self.rates.get(f"{PIVOT}/{symbol}")
        if inverse is not None:
            return _WIDE.divide(Decimal(1), inverse)
        raise RatesUnavailable(f"The rate feed ({self.source}) has no {symbol}/{PIVOT} rate.")

    def rate(self, base: str, quote: str) -> Decimal:
        """The locked rate: one `base` in `quote`, a quoted pair if present, else via USD."""
        base, quote = base.upper(), quote.upper()
        if base == quote:
            return Decimal(1)
        quoted = self.rates.get(f"{base}/{quote}")
        if quoted is None:
            quoted = _WIDE.divide(self.usd_price(base), self.usd_price(quote))
        locked = quoted.quantize(Decimal(1).scaleb(-RATE_PLACES), ROUND_HALF_EVEN, _WIDE)
        if locked <= 0:  # a price too small for the rate's places is no price at all
            raise RatesUnavailable(f"The {base}/{quote} rate is too small to quote.")
        return locked


def convert_up(amount: Decimal, rate: Decimal, decimals: int) -> int:
    """Base units of a token worth `amount` at `rate` (currency per token), rounded up.

    Rounding up is the customer's side of the rounding: the merchant never receives less
    than the price, and the difference is below one base unit.
    """
    if rate <= 0:
        raise InvalidRate("rate must be greater than zero")
    tokens = _WIDE.divide(amount, rate)
    scaled = tokens.scaleb(decimals, _WIDE).to_integral_value(ROUND_CEILING)
    try:
        base_units = int(scaled)
    except (InvalidOperation, OverflowError, ValueError) as exc:  # pragma: no cover
        raise InvalidAmount("amount", "is too large") from exc
    if base_units > MAX_BASE_UNITS:
        raise InvalidAmount("amount", "is too large")
    return base_units


def check_peg(symbol: str, usd_price: Decimal, band: Decimal) -> None:
    """Refuse a stablecoin whose USD price is more than `band` away from 1.00."""
    if abs(usd_price - 1) > band:
        low, high = 1 - band, 1 + band
        raise AssetDepegged(
            f"{symbol} trades at {usd_price} USD, outside the accepted band {low}-{high}; "
            "it cannot be priced now. Choose another asset or try later.",
            param="asset",
        )


def format_rate(rate: Decimal) -> str:
    """A rate for JSON: trailing zeros trimmed, at least four places ("1.0000", "0.9259…")."""
    text = format(rate.normalize(_WIDE), "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(4, '0')}"
