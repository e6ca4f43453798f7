"""Conversions between on-chain base units (int) and human amounts (Decimal).

The one place that knows how a token amount is written. Every conversion takes the
asset's decimals, so 6-decimal USDT on Ethereum and 18-decimal USDT on BSC can never be
confused. No float is accepted or produced.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from stablegate_common.core.errors import InvalidAmount

MAX_BASE_UNITS = 2**256 - 1


def parse_amount(text: str, decimals: int, *, field: str = "amount") -> Decimal:
    """Parse a merchant-supplied decimal string; refuse floats, exponents and excess precision."""
    if not isinstance(text, str):
        raise InvalidAmount(field, 'must be a decimal string such as "25.00"')
    stripped = text.strip()
    if not stripped or any(c not in "0123456789." for c in stripped) or stripped.count(".") > 1:
        raise InvalidAmount(field, 'must be a plain decimal string such as "25.00"')
    try:
        value = Decimal(stripped)
    except InvalidOperation as exc:  # pragma: no cover - guarded by the character check
        raise InvalidAmount(field, "is not a decimal number") from exc
    if value <= 0:
        raise InvalidAmount(field, "must be greater than zero")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > decimals and value != value.quantize(Decimal(1).scaleb(-decimals)):
        raise InvalidAmount(field, f"has more than {decimals} decimal places")
    if to_base_units(value, decimals) > MAX_BASE_UNITS:
        raise InvalidAmount(field, "is too large")
    return value


def to_base_units(amount: Decimal, decimals: int) -> int:
    """Exact conversion of a token amount to base units; refuses anything that would round."""
    if not isinstance(amount, Decimal):
        raise TypeError("amount must be a Decimal")
    scaled = amount.scaleb(decimals)
    integral = scaled.to_integral_value()
    if scaled != integral:
        raise InvalidAmount("amount", f"has more than {decimals} decimal places")
    return int(integral)


def from_base_units(base_units: int, decimals: int) -> Decimal:
    """Base units to a Decimal with exactly `decimals` places (never rounds)."""
    if not isinstance(base_units, int) or isinstance(base_units, bool):
        raise TypeError("base_units must be an int")
    return Decimal(base_units).scaleb(-decimals).quantize(Decimal(1).scaleb(-decimals))


def format_amount(base_units: int, decimals: int) -> str:
    """The JSON form of an amount: a decimal string with trailing zeros trimmed to two places min.

    25 USDT prints as "25.00", 25.5 as "25.50", 1.234567 as "1.234567".
    """
    value = from_base_units(base_units, decimals)
    text = format(value, "f")
    if "." not in text:
        return text
    whole, frac = text.split(".")
    frac = frac.rstrip("0")
    frac = frac.ljust(min(2, decimals), "0")
    return f"{whole}.{frac}" if frac else whole
