"""Conversions between on-chain base units (int) and human amounts (Decimal).

The one place that knows how a token amount is written. Every conversion takes the
asset's decimals, so 6-decimal USDT on Ethereum and 18-decimal USDT on BSC can never be
confused. No float is accepted or produced.
"""

from __future__ import annotations

from decimal import Context, Decimal, Inexact, InvalidOperation

from stablegate_common.core.errors import InvalidAmount

MAX_BASE_UNITS = 2**256 - 1
# The default context keeps 28 digits, so 18-decimal amounts above 10**10 would be rounded
# silently. This one holds a 78-digit uint256 plus any token's decimals, and raises
# instead of dropping a non-zero digit.
_EXACT = Context(prec=160, traps=[InvalidOperation, Inexact])


def parse_amount(text: str, decimals: int, *, field: str = "amount") -> Decimal:
    """Parse a merchant-supplied decimal string; refuse floats, exponents and excess precision."""
    if not isinstance(text, str):
        raise InvalidAmount(field, 'must be a decimal string such as "25.00"')
    stripped = text.strip()
    if not stripped or any(c not in "0123456789." for c in stripped) or stripped.count(".") > 1:
        raise InvalidAmount(field, 'must be a plain decimal string such as "25.00"')
    try:
        value = Decimal(stripped)
    except InvalidOperation as exc:  # "." alone passes the character check
        raise InvalidAmount(field, "is not a decimal number") from exc
    if value <= 0:
        raise InvalidAmount(field, "must be greater than zero")
    if value.adjusted() >= 78:  # more whole digits than any uint256 amount can have
        raise InvalidAmount(field, "is too large")
    try:
        base_units = to_base_units(value, decimals)
    except InvalidAmount:
        raise InvalidAmount(field, f"has more than {decimals} decimal places") from None
    if base_units > MAX_BASE_UNITS:
        raise InvalidAmount(field, "is too large")
    return value


def to_base_units(amount: Decimal, decimals: int) -> int:
    """Exact conversion of a token amount to base units; refuses anything that would round."""
    if not isinstance(amount, Decimal):
        raise TypeError("amount must be a Decimal")
    too_precise = InvalidAmount("amount", f"has more than {decimals} decimal places")
    if not amount.is_finite():
        raise too_precise
    try:
        scaled = amount.scaleb(decimals, context=_EXACT)
    except Inexact:  # a non-zero digit was about to be dropped
        raise too_precise from None
    integral = scaled.to_integral_value()
    if scaled != integral:
        raise too_precise
    return int(integral)


def from_base_units(base_units: int, decimals: int) -> Decimal:
    """Base units to a Decimal with exactly `decimals` places (never rounds)."""
    if not isinstance(base_units, int) or isinstance(base_units, bool):
        raise TypeError("base_units must be an int")
    if abs(base_units) > MAX_BASE_UNITS:
        raise ValueError("base_units is outside the uint256 range")
    step = Decimal(1).scaleb(-decimals)
    return Decimal(base_units).scaleb(-decimals, context=_EXACT).quantize(step, context=_EXACT)


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
