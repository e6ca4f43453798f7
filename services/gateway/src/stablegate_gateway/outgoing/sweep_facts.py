"""What the sweep planner is given: per-address facts, the fee wallet, fee quotes, the
Tron block reference, and the round's policy. Checked at construction, so an impossible
fact (a negative balance, a zero gas price) is refused naming its field.

Pure: ints of base units, Decimal only for the margin, the dust share and prices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

TRX = 1_000_000  # sun


class PlanningError(ValueError):
    """A fact handed to the planner is impossible; the message names the field."""


def _uint(owner: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PlanningError(f"{owner}.{name}: must be a non-negative int, got {value!r}")


def _uints(owner: object, *names: str) -> None:
    for name in names:
        _uint(type(owner).__name__, name, getattr(owner, name))


@dataclass(frozen=True)
class TokenHolding:
    """One token balance at a deposit address and the node's estimate for sweeping it
    (EVM gas, Tron energy of `transfer(treasury, balance)` from that address)."""

    symbol: str
    contract: str  # display form: EIP-55 or base58check
    decimals: int
    balance: int
    estimate: int

    def __post_init__(self) -> None:
        _uints(self, "decimals", "balance", "estimate")


@dataclass(frozen=True)
class EvmDeposit:
    address: str  # EIP-55
    path: str
    native_balance: int
    nonce: int  # pending
    holdings: tuple[TokenHolding, ...]

    def __post_init__(self) -> None:
        _uints(self, "native_balance", "nonce")


@dataclass(frozen=True)
class TronDeposit:
    address: str
    path: str
    trx_balance: int
    activated: bool
    bandwidth_left: int  # free + staked bytes it can spend now (0 when not activated)
    holdings: tuple[TokenHolding, ...]

    def __post_init__(self) -> None:
        _uints(self, "trx_balance", "bandwidth_left")


@dataclass(frozen=True)
class EvmFeeWallet:
    address: str
    path: str
    balance: int
    nonce: int  # pending

    def __post_init__(self) -> None:
        _uints(self, "balance", "nonce")


@dataclass(frozen=True)
class TronFeeWallet:
    address: str
    path: str
    balance: int
    delegatable_energy_sun: int  # getcandelegatedmaxsize type 1
    staked_bandwidth_left: int  # NetLimit - NetUsed
    free_bandwidth_left: int  # freeNetLimit - freeNetUsed

    def __post_init__(self) -> None:
        _uints(
            self, "balance", "delegatable_energy_sun", "staked_bandwidth_left",
            "free_bandwidth_left",
        )  # fmt: skip


@dataclass(frozen=True)
class Eip1559Fees:
    base_fee: int  # the next block's, wei
    priority_fee: int

    def __post_init__(self) -> None:
        _uints(self, "base_fee", "priority_fee")

    @property
    def max_fee_per_gas(self) -> int:
        return 2 * self.base_fee + self.priority_fee

    @property
    def expected_price(self) -> int:
        return self.base_fee + self.priority_fee


@dataclass(frozen=True)
class LegacyFees:
    gas_price: int

    def __post_init__(self) -> None:
        _uints(self, "gas_price")
        if self.gas_price == 0:
            raise PlanningError("LegacyFees.gas_price: must be positive")

    @property
    def max_fee_per_gas(self) -> int:
        return self.gas_price

    @property
    def expected_price(self) -> int:
        return self.gas_price


@dataclass(frozen=True)
class TronFees:
    energy_price: int  # sun per energy (getEnergyFee)
    bandwidth_price: int  # sun per byte (getTransactionFee)
    create_new_account_fee: int  # getCreateNewAccountFeeInSystemContract
    create_account_fee: int  # getCreateAccountFee: bytes of an activation not staked
    free_bandwidth: int  # getFreeNetLimit: what a new account may spend a day
    total_energy_limit: int
    total_energy_weight: int  # whole TRX staked for energy network-wide

    def __post_init__(self) -> None:
        _uints(
            self, "energy_price", "bandwidth_price", "create_new_account_fee",
            "create_account_fee", "free_bandwidth", "total_energy_limit", "total_energy_weight",
        )  # fmt: skip
        if self.energy_price == 0:
            raise PlanningError("TronFees.energy_price: must be positive")

    def stake_for(self, energy: int) -> int:
        """Sun of staked TRX whose delegation yields at least `energy`: the receiver gets
        `whole TRX x TotalEnergyLimit // TotalEnergyWeight` (devnet/tron/resources.py,
        java-tron's EnergyProcessor), so ceil(energy x weight / limit) whole TRX, >= 1."""
        if self.total_energy_limit == 0:
            raise PlanningError("TronFees.total_energy_limit: must be positive to delegate")
        whole = -(-energy * self.total_energy_weight // self.total_energy_limit)
        return max(1, whole) * TRX


@dataclass(frozen=True)
class TronBlockRef:
    ref_block_bytes: str  # 4 hex
    ref_block_hash: str  # 16 hex
    timestamp_ms: int
    expiration_ms: int

    def __post_init__(self) -> None:
        _uints(self, "timestamp_ms", "expiration_ms")
        if len(self.ref_block_bytes) != 4 or len(self.ref_block_hash) != 16:
            raise PlanningError("TronBlockRef: ref_block_bytes is 4 hex, ref_block_hash 16")
        if self.expiration_ms <= self.timestamp_ms:
            raise PlanningError("TronBlockRef.expiration_ms: must be after timestamp_ms")


@dataclass(frozen=True)
class SweepPolicy:
    network: str
    native_symbol: str
    native_decimals: int
    min_amounts: Mapping[str, int]  # asset symbol -> threshold in base units
    max_fee_share: Decimal
    gas_margin: Decimal
    native_price_usd: Decimal | None
    treasury: str

    def __post_init__(self) -> None:
        if not self.gas_margin.is_finite() or self.gas_margin < 1:
            raise PlanningError(f"SweepPolicy.gas_margin: at least 1, got {self.gas_margin}")
        if not self.max_fee_share.is_finite() or not 0 < self.max_fee_share <= 1:
            raise PlanningError("SweepPolicy.max_fee_share: in (0, 1]")
        for symbol, units in self.min_amounts.items():
            _uint("SweepPolicy.min_amounts", symbol, units)

    def with_margin(self, estimate: int) -> int:
        """estimate x margin, rounded up, in integers."""
        numerator, denominator = self.gas_margin.as_integer_ratio()
        return -(-estimate * numerator // denominator)
