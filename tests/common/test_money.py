"""Money conversions: exact in both directions, strict about what a merchant may send."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stablegate_common.core.errors import InvalidAmount
from stablegate_common.core.money import (
    MAX_BASE_UNITS,
    format_amount,
    from_base_units,
    parse_amount,
    to_base_units,
)

decimals_st = st.integers(min_value=0, max_value=30)
base_units_st = st.one_of(
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=MAX_BASE_UNITS),
)


@given(decimals_st, base_units_st)
def test_base_units_round_trip_through_decimal(decimals: int, base_units: int) -> None:
    value = from_base_units(base_units, decimals)
    assert value.as_tuple().exponent == -decimals
    assert to_base_units(value, decimals) == base_units


@given(decimals_st, base_units_st.filter(lambda n: n > 0))
def test_formatted_amount_parses_back_to_the_same_base_units(
    decimals: int, base_units: int
) -> None:
    text = format_amount(base_units, decimals)
    assert to_base_units(parse_amount(text, decimals), decimals) == base_units


@given(decimals_st, st.data())
def test_any_plain_decimal_within_precision_parses_exactly(decimals: int, data: Any) -> None:
    whole = data.draw(st.integers(min_value=0, max_value=10**40))
    frac = data.draw(st.integers(min_value=0, max_value=10**decimals - 1)) if decimals else 0
    if whole == 0 and frac == 0:
        frac = 1 if decimals else 0
        whole = 0 if decimals else 1
    text = f"{whole}.{frac:0{decimals}d}" if decimals else str(whole)
    assert parse_amount(text, decimals) == Decimal(text)
    assert to_base_units(parse_amount(text, decimals), decimals) == whole * 10**decimals + frac


@given(st.integers(min_value=0, max_value=29), st.integers(min_value=1, max_value=10**12))
def test_one_digit_too_many_is_refused(decimals: int, units: int) -> None:
    text = format(Decimal(units * 10 + 1).scaleb(-(decimals + 1)), "f")
    with pytest.raises(InvalidAmount, match=f"more than {decimals} decimal places"):
        parse_amount(text, decimals)


@pytest.mark.parametrize(
    ("text", "decimals", "expected"),
    [
        ("25", 6, Decimal("25")),
        ("25.00", 6, Decimal("25.00")),
        ("  25.5\n", 6, Decimal("25.5")),
        ("0.000001", 6, Decimal("0.000001")),
        ("1.", 6, Decimal("1")),
        (".5", 6, Decimal("0.5")),
        ("25.500000000", 6, Decimal("25.5")),  # trailing zeros beyond the decimals are harmless
        ("0.000000000000000001", 18, Decimal("1E-18")),
        ("7", 0, Decimal("7")),
        ("7.000", 0, Decimal("7")),
    ],
)
def test_parse_amount_accepts(text: str, decimals: int, expected: Decimal) -> None:
    assert parse_amount(text, decimals) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "greater than zero"),
        ("0.00", "greater than zero"),
        ("-1", "plain decimal string"),
        ("+1", "plain decimal string"),
        ("1e3", "plain decimal string"),
        ("1E3", "plain decimal string"),
        ("", "plain decimal string"),
        ("   ", "plain decimal string"),
        ("1.2.3", "plain decimal string"),
        ("1..2", "plain decimal string"),
        ("1,000", "plain decimal string"),
        ("1 000", "plain decimal string"),
        ("NaN", "plain decimal string"),
        ("Infinity", "plain decimal string"),
        ("0x10", "plain decimal string"),
        ("١٢", "plain decimal string"),  # Arabic-Indic digits, which Decimal() would accept
        (".", "not a decimal number"),
        ("1.0000001", "more than 6 decimal places"),
        ("0.0000001", "more than 6 decimal places"),
        ("1" * 78, "too large"),
        ("1" * 1000, "too large"),
        (str(MAX_BASE_UNITS // 10**6 + 1), "too large"),
        (1.5, "decimal string"),
        (25, "decimal string"),
        (Decimal("25"), "decimal string"),
        (None, "decimal string"),
    ],
)
def test_parse_amount_refuses(value: Any, problem: str) -> None:
    with pytest.raises(InvalidAmount, match=problem) as info:
        parse_amount(value, 6, field="price")
    assert info.value.param == "price"
    assert info.value.code == "invalid_amount"
    assert info.value.message.startswith("price ")


def test_largest_uint256_amount_is_accepted() -> None:
    text = format(from_base_units(MAX_BASE_UNITS, 6), "f")
    assert to_base_units(parse_amount(text, 6), 6) == MAX_BASE_UNITS


@pytest.mark.parametrize(
    ("base_units", "decimals", "expected"),
    [
        (25_000_000, 6, "25.00"),
        (25_500_000, 6, "25.50"),
        (1_234_567, 6, "1.234567"),
        (1, 6, "0.000001"),
        (0, 6, "0.00"),
        (10**18, 18, "1.00"),
        (25 * 10**18 + 1, 18, "25.000000000000000001"),
        (5, 0, "5"),
        (25, 1, "2.5"),
        (20, 1, "2.0"),
        (10**30, 18, "1000000000000.00"),
        (MAX_BASE_UNITS, 0, str(MAX_BASE_UNITS)),
    ],
)
def test_format_amount(base_units: int, decimals: int, expected: str) -> None:
    assert format_amount(base_units, decimals) == expected


def test_from_base_units_keeps_every_place() -> None:
    assert str(from_base_units(25_000_000, 6)) == "25.000000"
    assert str(from_base_units(0, 2)) == "0.00"


def test_large_18_decimal_amounts_are_exact() -> None:
    """Beyond 28 significant digits the default Decimal context would round silently."""
    text = "12345678901.123456789012345678"
    assert to_base_units(parse_amount(text, 18), 18) == 12345678901123456789012345678
    assert str(from_base_units(12345678901123456789012345678, 18)) == text


@pytest.mark.parametrize(
    ("amount", "decimals"),
    [
        (Decimal("1.0000001"), 6),
        (Decimal("0.5"), 0),
        (Decimal("1." + "0" * 200 + "1"), 6),  # the stray digit is beyond any context precision
        (Decimal("NaN"), 6),
        (Decimal("Infinity"), 6),
    ],
)
def test_to_base_units_refuses_to_round(amount: Decimal, decimals: int) -> None:
    with pytest.raises(InvalidAmount, match=f"more than {decimals} decimal places"):
        to_base_units(amount, decimals)


def test_trailing_zeros_beyond_the_context_are_not_rounding() -> None:
    assert to_base_units(Decimal("1." + "0" * 300), 6) == 1_000_000


@pytest.mark.parametrize("bad", [1.5, 1, "1.5"])
def test_to_base_units_accepts_only_decimal(bad: Any) -> None:
    with pytest.raises(TypeError):
        to_base_units(bad, 6)


@pytest.mark.parametrize("bad", [1.0, True, Decimal(1), "1"])
def test_from_base_units_accepts_only_int(bad: Any) -> None:
    with pytest.raises(TypeError):
        from_base_units(bad, 6)


def test_from_base_units_refuses_more_than_uint256() -> None:
    with pytest.raises(ValueError, match="uint256"):
        from_base_units(MAX_BASE_UNITS + 1, 6)
