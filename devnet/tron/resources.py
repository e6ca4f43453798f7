"""Stake 2.0 on the devnet: the network's resource parameters and price history, staked
energy and bandwidth per account (own stake, delegated away, acquired), how used resources
recover, and the four system contracts the sweep needs: FreezeBalanceV2,
UnfreezeBalanceV2, DelegateResource and UnDelegateResource.

Rules and numbers follow java-tron as funds-out.md §1.1-§1.5 cites them:
`EnergyLimit = staked TRX (own + acquired) * TotalEnergyLimit / TotalEnergyWeight`, with
TotalEnergyWeight the whole TRX staked for energy on the network (the devnet adds its own
stakes to a configurable weight for the rest of the network, mainnet-sized by default);
bandwidth alike with TotalNetLimit / TotalNetWeight; used energy and bandwidth recover
linearly over 24 h; an unstake waits 14 days; a delegation may be locked for a number of
3-second blocks (default 86,400, at most 864,000); undelegating moves the receiver's usage
back to the owner pro rata, capped at what the balance stands for (UnDelegateResource-
Actuator). Validation messages are java-tron's, as the HTTP docs list them. Everything is
in sun and whole numbers: java-tron's doubles become integer division here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from devnet.tron.encoding import Hex41

if TYPE_CHECKING:
    from devnet.tron.ledger import Account, Call, Ledger

TRX = 1_000_000  # sun
WINDOW_MS = 86_400_000
BLOCK_INTERVAL_MS = 3_000
UNFREEZE_DELAY_MS = 14 * 86_400_000  # getUnfreezeDelayDays (#70) = 14
MAX_UNFREEZE_TIMES = 32
DEFAULT_LOCK_PERIOD = 86_400  # blocks: 3 days
MAX_LOCK_PERIOD = 864_000  # getMaxDelegateLockPeriod (#78), ≈ 30 days
STAKABLE = ("BANDWIDTH", "ENERGY")


@dataclass(frozen=True)
class Delegation:
    """One DelegatedResource record (from, to, locked or not), in sun of staked TRX."""

    bandwidth: int = 0
    energy: int = 0
    expire_time_for_bandwidth: int = 0
    expire_time_for_energy: int = 0

    def amount(self, resource: str) -> int:
        return self.energy if resource == "ENERGY" else self.bandwidth

    def expire_time(self, resource: str) -> int:
        if resource == "ENERGY":
            return self.expire_time_for_energy
        return self.expire_time_for_bandwidth

    def plus(self, resource: str, amount: int, expire_time: int) -> Delegation:
        if resource == "ENERGY":
            return replace(self, energy=self.energy + amount, expire_time_for_energy=expire_time)
        return replace(
            self, bandwidth=self.bandwidth + amount, expire_time_for_bandwidth=expire_time
        )

    @property
    def empty(self) -> bool:
        return not self.energy and not self.bandwidth


DelegationKey = tuple[Hex41, Hex41, bool]  # (from, to, locked)


@dataclass
class NetworkParams:
    """Chain-wide values a committee proposal would set; tests change them through the
    `set_prices` / `set_network` controls. Prices keep their history, as
    `getenergyprices` reports it (`"0:100,1726283400000:210,…"`)."""

    energy_prices: list[tuple[int, int]] = field(default_factory=lambda: [(0, 100)])
    bandwidth_prices: list[tuple[int, int]] = field(default_factory=lambda: [(0, 1_000)])
    total_energy_limit: int = 180_000_000_000  # #19
    total_net_limit: int = 43_200_000_000
    other_energy_weight: int = 19_000_000_000  # whole TRX the rest of the network stakes
    other_net_weight: int = 26_000_000_000

    @property
    def energy_price(self) -> int:
        return self.energy_prices[-1][1]

    @property
    def bandwidth_price(self) -> int:
        return self.bandwidth_prices[-1][1]

    def set_price(self, resource: str, sun: int, now_ms: int) -> None:
        if sun <= 0:
            raise ValueError("a price must be at least 1 sun")
        history = self.energy_prices if resource == "ENERGY" else self.bandwidth_prices
        history.append((max(now_ms, history[-1][0] + 1), sun))


def price_history(history: list[tuple[int, int]]) -> str:
    return ",".join(f"{since}:{sun}" for since, sun in history)


# --- limits and usage -----------------------------------------------------------------------


def recovered(used: int, last_ms: int, now_ms: int) -> int:
    """What is left of `used` after linear recovery over the 24-hour window."""
    elapsed = now_ms - last_ms
    if elapsed >= WINDOW_MS or used <= 0:
        return 0
    if elapsed <= 0:
        return used
    return used * (WINDOW_MS - elapsed) // WINDOW_MS


def total_energy_weight(ledger: Ledger, params: NetworkParams) -> int:
    return params.other_energy_weight + ledger.staked_energy // TRX


def total_net_weight(ledger: Ledger, params: NetworkParams) -> int:
    return params.other_net_weight + ledger.staked_bandwidth // TRX


def energy_limit(account: Account, ledger: Ledger, params: NetworkParams) -> int:
    weight = (account.frozen_energy + account.acquired_energy) // TRX
    return weight * params.total_energy_limit // max(total_energy_weight(ledger, params), 1)


def net_limit(account: Account, ledger: Ledger, params: NetworkParams) -> int:
    weight = (account.frozen_bandwidth + account.acquired_bandwidth) // TRX
    return weight * params.total_net_limit // max(total_net_weight(ledger, params), 1)


def energy_used(account: Account, now_ms: int) -> int:
    return recovered(account.energy_used, account.latest_consume_time_for_energy, now_ms)


def net_used(account: Account, now_ms: int) -> int:
    return recovered(account.net_used, account.latest_consume_time, now_ms)


def energy_left(account: Account, ledger: Ledger, params: NetworkParams, now_ms: int) -> int:
    return max(0, energy_limit(account, ledger, params) - energy_used(account, now_ms))


def net_left(account: Account, ledger: Ledger, params: NetworkParams, now_ms: int) -> int:
    return max(0, net_limit(account, ledger, params) - net_used(account, now_ms))


def use_energy(account: Account, amount: int, now_ms: int) -> None:
    if amount:
        account.energy_used = energy_used(account, now_ms) + amount
        account.latest_consume_time_for_energy = now_ms


def use_net(account: Account, amount: int, now_ms: int) -> None:
    if amount:
        account.net_used = net_used(account, now_ms) + amount
        account.latest_consume_time = now_ms


def _usage_in_sun(used: int, weight: int, limit: int) -> int:
    """The staked TRX (sun) that `used` units of a resource stand for."""
    return used * weight * TRX // max(limit, 1)


# --- the four system contracts --------------------------------------------------------------


def check_stake(ledger: Ledger, call: Call, params: NetworkParams, tokens: set[Hex41],
                now_ms: int) -> str | None:  # fmt: skip
    """java-tron's validation message for `call`, or None when it may run."""
    owner = ledger.accounts.get(call.owner)
    if call.kind == "FreezeBalanceV2Contract":
        return _check_freeze(owner, call)
    if call.kind == "UnfreezeBalanceV2Contract":
        return _check_unfreeze(owner, call, now_ms)
    if call.kind == "DelegateResourceContract":
        return _check_delegate(ledger, owner, call, params, tokens, now_ms)
    return _check_undelegate(ledger, owner, call, now_ms)


def _check_freeze(owner: Account | None, call: Call) -> str | None:
    if owner is None:
        return f"Account[{call.owner}] not exists"
    if call.amount <= 0:
        return "frozenBalance must be positive"
    if call.amount < TRX:
        return "frozenBalance must be greater than or equal to 1 TRX"
    if call.amount > owner.balance:
        return "frozenBalance must be less than or equal to accountBalance"
    if call.resource not in STAKABLE:
        # The devnet runs without the new resource model, so no TRON_POWER stakes.
        return "ResourceCode error, valid ResourceCode[BANDWIDTH、ENERGY]"
    return None


def _check_unfreeze(owner: Account | None, call: Call, now_ms: int) -> str | None:
    if owner is None:
        return f"Account[{call.owner}] does not exist"
    if call.resource not in STAKABLE:
        return "ResourceCode error.valid ResourceCode[BANDWIDTH、Energy]"
    frozen = owner.frozen(call.resource)
    if not frozen:
        return (
            "no frozenBalance(Energy)"
            if call.resource == "ENERGY"
            else ("no frozenBalance(BANDWIDTH)")
        )
    if sum(1 for _, _, expire in owner.unfrozen if expire > now_ms) >= MAX_UNFREEZE_TIMES:
        return "Invalid unfreeze operation, unfreezing times is over limit"
    if not 0 < call.amount <= frozen:
        return f"Invalid unfreeze_balance, [{call.amount}] is error"
    return None


def _check_delegate(ledger: Ledger, owner: Account | None, call: Call, params: NetworkParams,
                    tokens: set[Hex41], now_ms: int) -> str | None:  # fmt: skip
    if owner is None:
        return f"Account[{call.owner}] not exists"
    if call.amount < TRX:
        return "delegateBalance must be greater than or equal to 1 TRX"
    if call.resource not in STAKABLE:
        return "ResourceCode error, valid ResourceCode[BANDWIDTH、ENERGY]"
    if call.amount > delegatable(ledger, owner, call.resource, params, now_ms):
        name = "FreezeEnergyV2" if call.resource == "ENERGY" else "FreezeBandwidthV2"
        return f"delegateBalance must be less than or equal to available {name} balance"
    if call.target == call.owner:
        return "receiverAddress must not be the same as ownerAddress"
    if call.target not in ledger.accounts and call.target not in tokens:
        return f"Account[{call.target}] not exists"
    if call.lock and not 0 <= call.lock_period <= MAX_LOCK_PERIOD:
        return (
            "The lock period of delegate resource cannot be less than 0 and cannot exceed "
            f"{MAX_LOCK_PERIOD}!"
        )
    if call.target in tokens:
        return "Do not allow delegate resources to contract addresses"
    return None


def delegatable(ledger: Ledger, owner: Account, resource: str, params: NetworkParams,
                now_ms: int) -> int:  # fmt: skip
    """Sun of own stake the owner can still delegate: its stake less what its used
    resource stands for beyond what was delegated to it (`getcandelegatedmaxsize`)."""
    if resource == "ENERGY":
        weight, limit = total_energy_weight(ledger, params), params.total_energy_limit
        usage = _usage_in_sun(energy_used(owner, now_ms), weight, limit)
        acquired, frozen = owner.acquired_energy, owner.frozen_energy
    else:
        weight, limit = total_net_weight(ledger, params), params.total_net_limit
        usage = _usage_in_sun(net_used(owner, now_ms), weight, limit)
        acquired, frozen = owner.acquired_bandwidth, owner.frozen_bandwidth
    return max(0, frozen - max(0, usage - acquired))


def _unlocked(ledger: Ledger, call: Call, now_ms: int) -> tuple[Delegation, Delegation]:
    """(unlocked, locked) records from owner to receiver, with the expired lock counted
    as unlocked for `call.resource`."""
    unlocked = ledger.delegations.get((call.owner, call.target, False), Delegation())
    locked = ledger.delegations.get((call.owner, call.target, True), Delegation())
    resource = call.resource
    if locked.amount(resource) and locked.expire_time(resource) <= now_ms:
        unlocked = unlocked.plus(resource, locked.amount(resource), 0)
        locked = locked.plus(resource, -locked.amount(resource), 0)
    return unlocked, locked


def _check_undelegate(ledger: Ledger, owner: Account | None, call: Call,
                      now_ms: int) -> str | None:  # fmt: skip
    if owner is None:
        return f"Account[{call.owner}] does not exist"
    if call.target == call.owner:
        return "receiverAddress must not be the same as ownerAddress"
    if call.resource not in STAKABLE:
        return "ResourceCode error.valid ResourceCode[BANDWIDTH、Energy]"
    keys = ((call.owner, call.target, False), (call.owner, call.target, True))
    if not any(key in ledger.delegations for key in keys):
        return "delegated Resource does not exist"
    if call.amount <= 0:
        return "unDelegateBalance must be more than 0 TRX"
    unlock = _unlocked(ledger, call, now_ms)[0].amount(call.resource)
    if unlock < call.amount:
        if call.resource == "ENERGY":
            name = "insufficient delegateFrozenBalance(Energy)"
        else:
            name = "insufficient delegatedFrozenBalance(BANDWIDTH)"
        return f"{name}, request={call.amount}, unlock_balance={unlock}"
    return None


def apply_stake(ledger: Ledger, call: Call, params: NetworkParams, now_ms: int) -> None:
    """Carry out a validated stake contract."""
    owner = ledger.accounts[call.owner]
    if call.kind == "FreezeBalanceV2Contract":
        owner.balance -= call.amount
        owner.add_frozen(call.resource, call.amount)
        ledger.add_staked(call.resource, call.amount)
    elif call.kind == "UnfreezeBalanceV2Contract":
        # Matured unstakes come back to the balance first, as the actuator does.
        owner.balance += sum(amount for _, amount, expire in owner.unfrozen if expire <= now_ms)
        kept = tuple(entry for entry in owner.unfrozen if entry[2] > now_ms)
        owner.unfrozen = (*kept, (call.resource, call.amount, now_ms + UNFREEZE_DELAY_MS))
        owner.add_frozen(call.resource, -call.amount)
        ledger.add_staked(call.resource, -call.amount)
    elif call.kind == "DelegateResourceContract":
        _delegate(ledger, owner, call, now_ms)
    else:
        _undelegate(ledger, owner, call, params, now_ms)


def _delegate(ledger: Ledger, owner: Account, call: Call, now_ms: int) -> None:
    key = (call.owner, call.target, call.lock)
    period = (call.lock_period or DEFAULT_LOCK_PERIOD) if call.lock else 0
    expire = now_ms + period * BLOCK_INTERVAL_MS if call.lock else 0
    ledger.delegations[key] = ledger.delegations.get(key, Delegation()).plus(
        call.resource, call.amount, expire
    )
    owner.add_frozen(call.resource, -call.amount)
    owner.add_delegated(call.resource, call.amount)
    receiver = ledger.accounts.get(call.target)
    if receiver is not None:
        receiver.add_acquired(call.resource, call.amount)


def _undelegate(
    ledger: Ledger, owner: Account, call: Call, params: NetworkParams, now_ms: int
) -> None:
    unlocked, locked = _unlocked(ledger, call, now_ms)
    unlocked = unlocked.plus(call.resource, -call.amount, unlocked.expire_time(call.resource))
    for key, record in (((call.owner, call.target, False), unlocked),
                        ((call.owner, call.target, True), locked)):  # fmt: skip
        if record.empty:
            ledger.delegations.pop(key, None)
        else:
            ledger.delegations[key] = record
    transfer = 0
    receiver = ledger.accounts.get(call.target)
    if receiver is not None:
        transfer = _take_usage(ledger, receiver, call, params, now_ms)
        receiver.add_acquired(call.resource, -call.amount)
    owner.add_delegated(call.resource, -call.amount)
    owner.add_frozen(call.resource, call.amount)
    if call.resource == "ENERGY":
        use_energy(owner, transfer, now_ms)
    else:
        use_net(owner, transfer, now_ms)


def _take_usage(
    ledger: Ledger, receiver: Account, call: Call, params: NetworkParams, now_ms: int
) -> int:
    """The receiver's usage that goes back to the owner with `call.amount` of stake."""
    if call.resource == "ENERGY":
        used, stake = energy_used(receiver, now_ms), receiver.frozen_energy
        stake += receiver.acquired_energy
        weight, limit = total_energy_weight(ledger, params), params.total_energy_limit
    else:
        used, stake = net_used(receiver, now_ms), receiver.frozen_bandwidth
        stake += receiver.acquired_bandwidth
        weight, limit = total_net_weight(ledger, params), params.total_net_limit
    if not used or not stake:
        return 0
    cap = call.amount // TRX * limit // max(weight, 1)
    transfer = min(used * call.amount // stake, cap)
    if call.resource == "ENERGY":
        receiver.energy_used = used - transfer
        receiver.latest_consume_time_for_energy = now_ms
    else:
        receiver.net_used = used - transfer
        receiver.latest_consume_time = now_ms
    return transfer
