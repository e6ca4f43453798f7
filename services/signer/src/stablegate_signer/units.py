"""Base units ↔ decimal strings. Amounts are `int` base units; decimals are for display only."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

NATIVE_SYMBOL = {"ethereum": "ETH", "bsc": "BNB", "tron": "TRX"}
NATIVE_DECIMALS = {"ethereum": 18, "bsc": 18, "tron": 6}


def format_amount(base_units: int, decimals: int) -> str:
    """The canonical decimal string: no exponent, no trailing fractional zeros ("12.5", "100")."""
    if base_units < 0:
        raise ValueError("amounts are never negative")
    whole, fraction = divmod(base_units, 10**decimals)
    if not fraction:
        return str(whole)
    return f"{whole}.{str(fraction).rjust(decimals, '0').rstrip('0')}"


def parse_amount(text: str, decimals: int) -> int:
    """A decimal string (e.g. from the policy file) to base units; refuses excess precision."""
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not a decimal number") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"{text!r} is not a non-negative finite number")
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{text!r} has more than {decimals} decimal places")
    return int(scaled)
