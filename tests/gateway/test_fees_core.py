"""The fee arithmetic (`stablegate_gateway.core.fees`): a table of worked examples per
network and rounding edge, and properties checked against an exact rational oracle."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stablegate_gateway.core.fees import (
    Eip1559Gas,
    FeePayer,
    Fees,
    FeeSchedule,
    LegacyGas,
    NetworkCost,
    TronResources,
    amount_due,
    network_fee,
    processing_fee,
    quote_fees,
)

D = Decimal
GWEI = 10**9

NETWORK_FEES: list[tuple[str, NetworkCost, str, str, int, int]] = [
    # label, cost, one native coin in the asset, coefficient, asset decimals, base units
    # 65,000 gas x 11 gwei = 0.000715 ETH; x 3000 = 2.145 USDT
    ("ethereum 1559", Eip1559Gas(65_000, 10 * GWEI, 1 * GWEI), "3000", "1", 6, 2_145_000),
    ("ethereum coefficient", Eip1559Gas(65_000, 10 * GWEI, 1 * GWEI), "3000", "1.2", 6, 2_574_000),
    ("ethereum no tip", Eip1559Gas(65_000, 10 * GWEI, 0), "3000", "1", 6, 1_950_000),
    # 21,000 x 1 gwei = 0.000021 ETH x 2000 = 0.042: exact, nothing to round
    ("exact, no rounding", Eip1559Gas(21_000, GWEI, 0), "2000", "1", 6, 42_000),
    # 1 wei x 3000 = 3e-15 USDT: below one base unit of a 6-decimal token, rounds up to it
    ("dust rounds up (6)", LegacyGas(1, 1), "3000", "1", 6, 1),
    ("dust is exact (18)", LegacyGas(1, 1), "3000", "1", 18, 3000),
    # BSC: 65,000 x 0.1 gwei = 0.0000065 BNB x 600 = 0.0039 USDT
    ("bsc legacy, 18 decimals", LegacyGas(65_000, GWEI // 10), "600", "1", 18, 39 * 10**14),
    ("bsc legacy, 6 decimals", LegacyGas(65_000, GWEI // 10), "600", "1", 6, 3_900),
    ("bsc coefficient 1.5", LegacyGas(65_000, GWEI // 10), "600", "1.5", 18, 585 * 10**13),
    # Tron: 64,285 energy x 100 sun + 345 bytes x 1000 sun = 6.7735 TRX x 0.25 = 1.693375
    ("tron", TronResources(64_285, 100, 345, 1000), "0.25", "1", 6, 1_693_375),
    # x 0.2500001 = 1.69337567735: rounds up in the 7th place
    ("tron rounds up", TronResources(64_285, 100, 345, 1000), "0.2500001", "1", 6, 1_693_376),
    ("tron empty recipient", TronResources(130_285, 100, 345, 1000), "0.25", "1", 6, 3_343_375),
    ("tron free bandwidth", TronResources(64_285, 100, 0, 1000), "0.25", "1", 6, 1_607_125),
    ("zero coefficient", Eip1559Gas(65_000, 10 * GWEI, GWEI), "3000", "0", 6, 0),
    ("zero gas price", LegacyGas(65_000, 0), "600", "1", 18, 0),
    # a de-pegged asset: one ETH buys more of it, so the fee in it is larger
    (
        "asset below par",
        Eip1559Gas(65_000, 10 * GWEI, GWEI),
        "3157.894736842105",
        "1",
        6,
        2_257_895,
    ),
]


@pytest.mark.parametrize(
    ("label", "cost", "price", "coefficient", "decimals", "expected"),
    NETWORK_FEES,
    ids=[row[0] for row in NETWORK_FEES],
)
def test_network_fee(
    label: str, cost: NetworkCost, price: str, coefficient: str, decimals: int, expected: int
) -> None:
    assert network_fee(cost, D(price), D(coefficient), decimals) == expected


PROCESSING_FEES: list[tuple[str, int, FeeSchedule, int, int]] = [
    # label, amount (base units), schedule, decimals, fee (base units)
    ("nothing configured", 25_000_000, FeeSchedule(), 6, 0),
    ("1 %", 25_000_000, FeeSchedule(percent=D(1)), 6, 250_000),
    ("1.5 % + 0.30", 25_000_000, FeeSchedule(percent=D("1.5"), fixed=D("0.30")), 6, 675_000),
    ("fixed only", 25_000_000, FeeSchedule(fixed=D("0.30")), 6, 300_000),
    ("half a unit rounds up", 1, FeeSchedule(percent=D("0.5")), 6, 1),
    ("0.01 % of 1.23", 1_230_000, FeeSchedule(percent=D("0.01")), 6, 123),
    ("0.01 % of 1.234567", 1_234_567, FeeSchedule(percent=D("0.01")), 6, 124),
    ("18 decimals", 10 * 10**18, FeeSchedule(percent=D("2.9"), fixed=D("0.30")), 18, 59 * 10**16),
    ("minimum lifts", 5_000_000, FeeSchedule(percent=D(1), minimum=D("0.50")), 6, 500_000),
    ("minimum not needed", 500_000_000, FeeSchedule(percent=D(1), minimum=D("0.50")), 6, 5_000_000),
    (
        "maximum caps",
        1_000_000 * 10**6,
        FeeSchedule(percent=D(1), maximum=D(100)),
        6,
        100_000_000,
    ),
    ("maximum rounds down", 25_000_000, FeeSchedule(percent=D(1), maximum=D("0.0000015")), 6, 1),
    (
        "minimum equals maximum",
        25_000_000,
        FeeSchedule(percent=D(5), minimum=D(1), maximum=D(1)),
        6,
        1_000_000,
    ),
    ("fixed finer than the token", 0, FeeSchedule(fixed=D("0.0000001")), 6, 1),
    ("100 %", 25_000_000, FeeSchedule(percent=D(100)), 6, 25_000_000),
]


@pytest.mark.parametrize(
    ("label", "amount", "schedule", "decimals", "expected"),
    PROCESSING_FEES,
    ids=[row[0] for row in PROCESSING_FEES],
)
def test_processing_fee(
    label: str, amount: int, schedule: FeeSchedule, decimals: int, expected: int
) -> None:
    assert processing_fee(amount, schedule, decimals) == expected


@pytest.mark.parametrize(
    ("payer", "expected"), [(FeePayer.MERCHANT, 25_000_000), (FeePayer.CUSTOMER, 27_695_000)]
)
def test_amount_due_adds_the_fees_only_when_the_customer_pays(
    payer: FeePayer, expected: int
) -> None:
    fees = quote_fees(
        25_000_000,
        6,
        cost=Eip1559Gas(65_000, 10 * GWEI, GWEI),
        native_price=D(3000),
        coefficient=D(1),
        schedule=FeeSchedule(percent=D(1), fixed=D("0.30")),
    )
    assert fees == Fees(network_fee=2_145_000, processing_fee=550_000)
    assert fees.total == 2_695_000
    assert amount_due(25_000_000, fees, payer) == expected


@pytest.mark.parametrize(
    "schedule",
    [
        {"percent": D(-1)},
        {"fixed": D("-0.01")},
        {"minimum": D(-1)},
        {"minimum": D(2), "maximum": D(1)},
    ],
)
def test_a_schedule_that_cannot_be_applied_is_refused(schedule: dict[str, Decimal]) -> None:
    with pytest.raises(ValueError, match="fee"):
        FeeSchedule(**schedule)


@pytest.mark.parametrize(("price", "coefficient"), [("0", "1"), ("-1", "1"), ("3000", "-0.1")])
def test_network_fee_refuses_a_price_or_coefficient_out_of_range(
    price: str, coefficient: str
) -> None:
    with pytest.raises(ValueError, match="native price"):
        network_fee(LegacyGas(65_000, GWEI), D(price), D(coefficient), 6)


# -- properties, against exact rationals --------------------------------------------------

decimals_st = st.sampled_from([6, 18])
amounts = st.integers(min_value=0, max_value=10**30)
prices = st.decimals(min_value=D("0.0001"), max_value=D(100_000), places=8)
coefficients = st.decimals(min_value=D(0), max_value=D(5), places=4)
percents = st.decimals(min_value=D(0), max_value=D(100), places=4)
fixed_amounts = st.decimals(min_value=D(0), max_value=D(1000), places=8)
costs = st.one_of(
    st.builds(
        Eip1559Gas,
        st.integers(0, 10**6),
        st.integers(0, 10**12),
        st.integers(0, 10**11),
    ),
    st.builds(LegacyGas, st.integers(0, 10**6), st.integers(0, 10**12)),
    st.builds(
        TronResources,
        st.integers(0, 10**6),
        st.integers(0, 10**4),
        st.integers(0, 10**4),
        st.integers(0, 10**4),
    ),
)


@st.composite
def schedules(draw: st.DrawFn) -> FeeSchedule:
    minimum = draw(fixed_amounts)
    maximum = draw(st.none() | fixed_amounts.map(lambda extra: minimum + extra))
    return FeeSchedule(draw(percents), draw(fixed_amounts), minimum, maximum)


def native_cost_exact(cost: NetworkCost) -> Fraction:
    match cost:
        case Eip1559Gas(gas, base, tip):
            return Fraction(gas * (base + tip), 10**18)
        case LegacyGas(gas, price):
            return Fraction(gas * price, 10**18)
        case TronResources(energy, energy_price, bandwidth, bandwidth_price):
            return Fraction(energy * energy_price + bandwidth * bandwidth_price, 10**6)
    raise AssertionError(cost)


@given(costs, prices, coefficients, decimals_st)
def test_network_fee_is_the_exact_cost_rounded_up_by_less_than_one_unit(
    cost: NetworkCost, price: Decimal, coefficient: Decimal, decimals: int
) -> None:
    exact = native_cost_exact(cost) * Fraction(price) * Fraction(coefficient) * 10**decimals
    fee = network_fee(cost, price, coefficient, decimals)
    assert fee >= 0
    assert exact <= fee < exact + 1


@given(amounts, schedules(), decimals_st)
def test_processing_fee_matches_the_exact_formula(
    amount: int, schedule: FeeSchedule, decimals: int
) -> None:
    scale = 10**decimals
    exact = Fraction(amount) * Fraction(schedule.percent) / 100 + Fraction(schedule.fixed) * scale
    expected = max(-(-exact // 1), -(-(Fraction(schedule.minimum) * scale) // 1))
    if schedule.maximum is not None:
        expected = min(expected, Fraction(schedule.maximum) * scale // 1)
    assert processing_fee(amount, schedule, decimals) == expected >= 0


@given(amounts, amounts, schedules(), decimals_st)
def test_processing_fee_never_falls_as_the_amount_grows(
    a: int, b: int, schedule: FeeSchedule, decimals: int
) -> None:
    low, high = sorted((a, b))
    assert processing_fee(low, schedule, decimals) <= processing_fee(high, schedule, decimals)


@given(costs, prices, coefficients, coefficients, decimals_st)
def test_network_fee_never_falls_as_the_coefficient_grows(
    cost: NetworkCost, price: Decimal, c1: Decimal, c2: Decimal, decimals: int
) -> None:
    low, high = sorted((c1, c2))
    assert network_fee(cost, price, low, decimals) <= network_fee(cost, price, high, decimals)


@given(amounts, costs, prices, coefficients, schedules(), decimals_st)
def test_the_customer_owes_the_amount_plus_every_fee_exactly(
    amount: int,
    cost: NetworkCost,
    price: Decimal,
    coefficient: Decimal,
    schedule: FeeSchedule,
    decimals: int,
) -> None:
    fees = quote_fees(
        amount, decimals, cost=cost, native_price=price, coefficient=coefficient, schedule=schedule
    )
    assert fees.network_fee >= 0
    assert fees.processing_fee >= 0
    assert amount_due(amount, fees, FeePayer.CUSTOMER) == amount + fees.network_fee + (
        fees.processing_fee
    )
    assert amount_due(amount, fees, FeePayer.MERCHANT) == amount
