"""The fee arithmetic: what moving a payment costs on each network, and the merchant's
processing fee, both in base units of the asset paid.

The network fee follows the chain's own model (research chains.md §6): gas times (base
fee + priority fee) on Ethereum (EIP-1559), gas times gas price on BSC (legacy pricing),
energy and bandwidth burned at their sun prices on Tron. It is the cost of one token
transfer out of the deposit address, converted to the asset with the native coin's price
and scaled by a per-network safety coefficient. The processing fee is a percent of the amount plus a
fixed part, clamped to a minimum and maximum. Every result rounds up to the asset's
smallest unit; inputs are ints and Decimals, never floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from enum import StrEnum

from stablegate_common.core.errors import ServiceUnavailable

WEI_DECIMALS = 18  # ETH and BNB
SUN_DECIMALS = 6  # TRX
_WIDE = Context(prec=120)  # uint256 amounts times 18-place prices stay exact


class NetworkFeeUnavailable(ServiceUnavailable):
    """The inputs of a network's fee (a gas price from the node) are missing or stale."""

    code = "network_fee_unavailable"


class FeePayer(StrEnum):
    MERCHANT = "merchant"  # the fee is reported; the customer pays the amount
    CUSTOMER = "customer"  # the fee is added to what the customer must send


@dataclass(frozen=True)
class Eip1559Gas:
    """Ethereum: each unit of gas costs the next block's base fee plus the priority tip."""

    gas: int
    base_fee_wei: int
    priority_fee_wei: int

    def native_cost(self) -> Decimal:
        wei = self.gas * (self.base_fee_wei + self.priority_fee_wei)
        return Decimal(wei).scaleb(-WEI_DECIMALS, _WIDE)


@dataclass(frozen=True)
class LegacyGas:
    """BSC: EIP-1559 exists with a zero base fee, so the legacy gas price is the price."""

    gas: int
    gas_price_wei: int

    def native_cost(self) -> Decimal:
        return Decimal(self.gas * self.gas_price_wei).scaleb(-WEI_DECIMALS, _WIDE)


@dataclass(frozen=True)
class TronResources:
    """Tron: a TRC-20 transfer burns energy and bandwidth at their prices in sun."""

    energy: int
    energy_price_sun: int
    bandwidth: int
    bandwidth_price_sun: int = 1000

    def native_cost(self) -> Decimal:
        sun = self.energy * self.energy_price_sun + self.bandwidth * self.bandwidth_price_sun
        return Decimal(sun).scaleb(-SUN_DECIMALS, _WIDE)


NetworkCost = Eip1559Gas | LegacyGas | TronResources


@dataclass(frozen=True)
class FeeSchedule:
    """A merchant's processing fee; `fixed`, `minimum` and `maximum` are in asset units
    (the assets are dollar tokens), `percent` is of the amount (1.5 means 1.5 %)."""

    percent: Decimal = Decimal(0)
    fixed: Decimal = Decimal(0)
    minimum: Decimal = Decimal(0)
    maximum: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("percent", "fixed", "minimum"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"fee {name} must not be negative")
        if self.maximum is not None and not self.maximum >= self.minimum:
            raise ValueError("fee maximum must not be below the minimum")


@dataclass(frozen=True)
class Fees:
    """A fee quote in base units of the asset."""

    network_fee: int
    processing_fee: int

    @property
    def total(self) -> int:
        return self.network_fee + self.processing_fee


def network_fee(
    cost: NetworkCost, native_price: Decimal, coefficient: Decimal, decimals: int
) -> int:
    """The network cost in base units of the asset, rounded up.

    `native_price` is one native coin (ETH, BNB, TRX) in units of the asset.
    """
    if native_price <= 0 or coefficient < 0:
        raise ValueError("the native price must be positive and the coefficient not negative")
    in_asset = _WIDE.multiply(_WIDE.multiply(cost.native_cost(), native_price), coefficient)
    return _ceil_base_units(in_asset, decimals)


def processing_fee(amount_base_units: int, schedule: FeeSchedule, decimals: int) -> int:
    """Percent of the amount plus the fixed part, clamped, in base units, rounded up.

    The maximum rounds down so the fee never exceeds what the merchant configured.
    """
    if amount_base_units < 0:
        raise ValueError("amount must not be negative")
    share = _WIDE.divide(_WIDE.multiply(Decimal(amount_base_units), schedule.percent), 100)
    fee = _ceil(_WIDE.add(share, schedule.fixed.scaleb(decimals, _WIDE)))
    fee = max(fee, _ceil_base_units(schedule.minimum, decimals))
    if schedule.maximum is not None:
        ceiling = int(schedule.maximum.scaleb(decimals, _WIDE).to_integral_value(ROUND_FLOOR))
        fee = min(fee, ceiling)
    return fee


def quote_fees(
    amount_base_units: int,
    decimals: int,
    *,
    cost: NetworkCost,
    native_price: Decimal,
    coefficient: Decimal,
    schedule: FeeSchedule,
) -> Fees:
    return Fees(
        network_fee=network_fee(cost, native_price, coefficient, decimals),
        processing_fee=processing_fee(amount_base_units, schedule, decimals),
    )


def amount_due(amount_base_units: int, fees: Fees, payer: FeePayer) -> int:
    """What the customer must send: the amount, plus every fee when the customer pays them."""
    return amount_base_units + fees.total if payer is FeePayer.CUSTOMER else amount_base_units


def _ceil_base_units(amount: Decimal, decimals: int) -> int:
    return _ceil(amount.scaleb(decimals, _WIDE))


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(ROUND_CEILING))
