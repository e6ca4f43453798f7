"""Sweep planning: from what the chain says at plan time to the transactions of one round.

Pure: no I/O, no clock, ints of base units for money (Decimal only for the margin, the
dust share and prices). `chain_quotes` reads the facts; `sweeps` feeds them in and
stores the result.

Per deposit address, in order of value (largest first, so a short fee wallet funds the
sweeps that matter most):
- every asset whose balance reaches its threshold is swept, whole, to the treasury;
- EVM: the fee wallet tops the address up to exactly the gas the sweeps may spend at
  most (gas limit = estimate x margin, rounded up, times the max fee per gas), less the
  native coin already there; the sweeps (the address's own nonces) wait for the top-up.
  Ethereum is EIP-1559 with max fee = 2 x base fee + tip (room for six full blocks of
  base-fee rise), BSC legacy with the node's gas price;
- Tron: where the fee wallet can delegate enough staked energy, it delegates it, the
  address sweeps on that energy and the delegation is taken back afterwards; otherwise the
  fee wallet sends the TRX the sweep burns (its fee_limit, the energy x price ceiling)
  and the bandwidth the address's own allowance does not cover. An address that only
  ever received TRC-20 has no account yet: the first TRX sent to it creates it, which the
  fee wallet pays (getCreateNewAccountFeeInSystemContract, and getCreateAccountFee
  unless its staked bandwidth covers the bytes);
- an address whose sweep would cost more than `max_fee_share` of its value is dust and
  left alone (not judged when the native coin's price is unknown: the plan says so);
- an address the fee wallet can no longer fund, or that would make the request longer
  than the signer takes (MAX_TRANSFERS), is left for the next round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_UP, Context, Decimal

from stablegate_gateway.outgoing.plans import PlannedTransfer, PlanSummary
from stablegate_gateway.outgoing.sweep_facts import (
    TRX,
    Eip1559Fees,
    EvmDeposit,
    EvmFeeWallet,
    LegacyFees,
    PlanningError,
    SweepPolicy,
    TokenHolding,
    TronBlockRef,
    TronDeposit,
    TronFees,
    TronFeeWallet,
)
from stablegate_signer import tron_proto
from stablegate_signer.addresses import tron_address_bytes
from stablegate_signer.evm import token_transfer_data

EVM_TRANSFER_GAS = 21_000  # a plain native transfer to an account without code
TRX_DECIMALS = 6
# What activates a Tron account that needs no TRX of its own (delegation, free bandwidth).
ACTIVATION_AMOUNT_SUN = 1
MAX_FEE_LIMIT_SUN = 15_000 * TRX  # getMaxFeeLimit (#47)
RESULT_SIZE = 64  # java-tron charges MAX_RESULT_SIZE_IN_TX on top of the serialized bytes
SIGNATURE = b"\0" * 65

# Why an address was left out of a plan (PlanSummary.skipped).
BELOW_THRESHOLD = "below_threshold"
DUST = "dust"
FEE_WALLET_SHORT = "fee_wallet_insufficient"
FEE_LIMIT_TOO_HIGH = "fee_limit_too_high"
BATCH_FULL = "batch_full"  # the signer takes at most MAX_TRANSFERS per request
MAX_TRANSFERS = 1000
# What a Move is for: the token transfers a plan exists to make (the rest pay for them).
MOVE_PURPOSES = frozenset({"sweep", "refund", "payout"})

__all__ = [
    "TRX",
    "Eip1559Fees",
    "EvmDeposit",
    "EvmFeeWallet",
    "LegacyFees",
    "Move",
    "PlanningError",
    "SweepPlan",
    "SweepPolicy",
    "TokenHolding",
    "TronBlockRef",
    "TronDeposit",
    "TronFeeWallet",
    "TronFees",
    "plan_evm_moves",
    "plan_evm_sweep",
    "plan_tron_moves",
    "plan_tron_sweep",
    "sweep_moves",
]

_WIDE = Context(prec=200)  # Decimal products of uint256 amounts and prices, never rounded
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class SweepPlan:
    transfers: list[PlannedTransfer]
    summary: PlanSummary


@dataclass(frozen=True)
class Move:
    """One token transfer out of a source address: a sweep of a whole balance to the
    treasury, or a refund or payout of `amount` to a customer's or supplier's address.
    `holding.estimate` is the gas (EVM) or energy (Tron) of exactly this transfer."""

    key: str
    purpose: str  # sweep | refund | payout
    holding: TokenHolding
    amount: int
    destination: str  # display form
    reference: str | None = None  # the refund or payout it carries
    merchant_id: str | None = None  # whose balance pays it


def sweep_moves(address: str, picked: Sequence[TokenHolding], treasury: str) -> list[Move]:
    return [Move(f"sweep:{address}:{h.symbol}", "sweep", h, h.balance, treasury) for h in picked]


# --- shared ----------------------------------------------------------------------------------


@dataclass
class _Tally:
    skipped: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    estimated: int = 0
    worst: int = 0
    addresses: int = 0

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def add(self, transfers: Sequence[PlannedTransfer]) -> None:
        self.addresses += 1
        for t in transfers:
            self.estimated += t.estimated_fee_base_units
            self.worst += t.max_fee_base_units
            if t.purpose in MOVE_PURPOSES:
                self.totals[t.asset] = self.totals.get(t.asset, 0) + t.amount_base_units


def _picked(holdings: Sequence[TokenHolding], policy: SweepPolicy) -> list[TokenHolding]:
    return [h for h in holdings if h.balance and h.balance >= policy.min_amounts.get(h.symbol, 0)]


def _below_threshold(holdings: Sequence[TokenHolding], picked: Sequence[TokenHolding]) -> bool:
    return not picked and any(h.balance for h in holdings)


def _value_usd(holdings: Sequence[TokenHolding]) -> Decimal:
    # Every registry asset is a USD stablecoin: one token is valued at 1 USD.
    return sum((Decimal(h.balance).scaleb(-h.decimals, _WIDE) for h in holdings), Decimal(0))


def _native_usd(amount: int, policy: SweepPolicy) -> Decimal | None:
    if policy.native_price_usd is None:
        return None
    native = Decimal(amount).scaleb(-policy.native_decimals, _WIDE)
    return _WIDE.multiply(native, policy.native_price_usd)


def _is_dust(cost: int, holdings: Sequence[TokenHolding], policy: SweepPolicy) -> bool:
    cost_usd = _native_usd(cost, policy)
    if cost_usd is None:
        return False
    return cost_usd > _WIDE.multiply(policy.max_fee_share, _value_usd(holdings))


def _by_value(deposits: Sequence[EvmDeposit] | Sequence[TronDeposit]) -> list[int]:
    """Indexes of `deposits`, largest value first (ties by address, so plans repeat)."""
    values = [_value_usd(d.holdings) for d in deposits]
    return sorted(range(len(deposits)), key=lambda i: (-values[i], deposits[i].address))


def _summary(kind: str, policy: SweepPolicy, tally: _Tally) -> PlanSummary:
    notes: list[str] = []
    cost_usd = _native_usd(tally.estimated, policy)
    worst_usd = _native_usd(tally.worst, policy)
    if policy.native_price_usd is None:
        notes.append(
            f"the {policy.native_symbol} price is unknown (GATEWAY_NATIVE_PRICES_USD): the "
            "cost is shown in native coin only and no address was left out as dust"
        )
    return PlanSummary(
        network=policy.network,
        kind=kind,
        addresses=tally.addresses,
        totals=dict(sorted(tally.totals.items())),
        network_cost_base_units=tally.estimated,
        network_cost_max_base_units=tally.worst,
        native_symbol=policy.native_symbol,
        native_price_usd=policy.native_price_usd,
        network_cost_usd=None if cost_usd is None else cost_usd.quantize(_CENT, ROUND_UP),
        network_cost_max_usd=None if worst_usd is None else worst_usd.quantize(_CENT, ROUND_UP),
        skipped=dict(sorted(tally.skipped.items())),
        notes=notes,
    )


# --- EVM -------------------------------------------------------------------------------------


def plan_evm_sweep(
    *,
    deposits: Sequence[EvmDeposit],
    fee_wallet: EvmFeeWallet,
    fees: Eip1559Fees | LegacyFees,
    chain_id: int,
    policy: SweepPolicy,
    max_transfers: int = MAX_TRANSFERS,
) -> SweepPlan:
    transfers: list[PlannedTransfer] = []
    tally = _Tally()
    nonce, budget = fee_wallet.nonce, fee_wallet.balance
    for index in _by_value(deposits):
        deposit = deposits[index]
        picked = _picked(deposit.holdings, policy)
        if not picked:
            if _below_threshold(deposit.holdings, picked):
                tally.skip(BELOW_THRESHOLD)
            continue
        moves = sweep_moves(deposit.address, picked, policy.treasury)
        planned = _evm_address(deposit, moves, fee_wallet, nonce, fees, chain_id, policy)
        if _is_dust(sum(t.estimated_fee_base_units for t in planned), picked, policy):
            tally.skip(DUST)
            continue
        spend = sum(t.amount_base_units + t.max_fee_base_units
                    for t in planned if t.purpose == "fee_topup")  # fmt: skip
        if spend > budget:
            tally.skip(FEE_WALLET_SHORT)
            continue
        if len(transfers) + len(planned) > max_transfers:
            tally.skip(BATCH_FULL)
            continue
        budget -= spend
        nonce += sum(1 for t in planned if t.purpose == "fee_topup")
        transfers.extend(planned)
        tally.add(planned)
    return SweepPlan(transfers, _summary("sweep", policy, tally))


def _evm_address(
    deposit: EvmDeposit,
    moves: Sequence[Move],
    fee_wallet: EvmFeeWallet,
    wallet_nonce: int,
    fees: Eip1559Fees | LegacyFees,
    chain_id: int,
    policy: SweepPolicy,
) -> list[PlannedTransfer]:
    """The fee top-up `deposit` needs (if any), then its moves at its own nonces."""
    per_gas, expected = fees.max_fee_per_gas, fees.expected_price
    max_fee_per_gas, tip, gas_price = _evm_fee_fields(fees)
    limits = [policy.with_margin(m.holding.estimate) for m in moves]
    shortfall = sum(limit * per_gas for limit in limits) - deposit.native_balance
    planned: list[PlannedTransfer] = []
    topup_key = None
    if shortfall > 0:
        topup_key = f"topup:{deposit.address}"
        planned.append(
            PlannedTransfer(
                key=topup_key,
                purpose="fee_topup",
                network=policy.network,
                source_address=fee_wallet.address,
                source_path=fee_wallet.path,
                destination_address=deposit.address,
                destination_path=deposit.path,
                asset=policy.native_symbol,
                token_contract=None,
                decimals=policy.native_decimals,
                amount_base_units=shortfall,
                max_fee_base_units=EVM_TRANSFER_GAS * per_gas,
                estimated_fee_base_units=EVM_TRANSFER_GAS * expected,
                chain_id=chain_id,
                nonce=wallet_nonce,
                gas_limit=EVM_TRANSFER_GAS,
                max_fee_per_gas=max_fee_per_gas,
                max_priority_fee_per_gas=tip,
                gas_price=gas_price,
            )
        )
    for offset, (move, limit) in enumerate(zip(moves, limits, strict=True)):
        holding = move.holding
        planned.append(
            PlannedTransfer(
                key=move.key,
                purpose=move.purpose,
                network=policy.network,
                source_address=deposit.address,
                source_path=deposit.path,
                destination_address=move.destination,
                destination_path=None,
                asset=holding.symbol,
                token_contract=holding.contract,
                decimals=holding.decimals,
                amount_base_units=move.amount,
                max_fee_base_units=limit * per_gas,
                estimated_fee_base_units=holding.estimate * expected,
                depends_on=topup_key,
                reference=move.reference,
                merchant_id=move.merchant_id,
                chain_id=chain_id,
                nonce=deposit.nonce + offset,
                gas_limit=limit,
                max_fee_per_gas=max_fee_per_gas,
                max_priority_fee_per_gas=tip,
                gas_price=gas_price,
            )
        )
    return planned


def _evm_fee_fields(fees: Eip1559Fees | LegacyFees) -> tuple[int | None, int | None, int | None]:
    """(max_fee_per_gas, max_priority_fee_per_gas, gas_price) as signed."""
    if isinstance(fees, LegacyFees):
        return None, None, fees.gas_price
    return fees.max_fee_per_gas, fees.priority_fee, None


def plan_evm_moves(
    *,
    kind: str,
    sources: Sequence[tuple[EvmDeposit, Sequence[Move]]],
    fee_wallet: EvmFeeWallet,
    fees: Eip1559Fees | LegacyFees,
    chain_id: int,
    policy: SweepPolicy,
    max_transfers: int = MAX_TRANSFERS,
) -> tuple[SweepPlan, list[Move]]:
    """Refunds and payouts: every source's moves, in the order given (no threshold, no
    dust rule: the merchant asked for each). The moves of a source the fee wallet cannot
    fund, or that would overfill the request, are returned as left for the next round."""
    transfers: list[PlannedTransfer] = []
    left: list[Move] = []
    tally = _Tally()
    nonce, budget = fee_wallet.nonce, fee_wallet.balance
    for deposit, moves in sources:
        if not moves:
            continue
        planned = _evm_address(deposit, moves, fee_wallet, nonce, fees, chain_id, policy)
        spend = sum(t.amount_base_units + t.max_fee_base_units
                    for t in planned if t.purpose == "fee_topup")  # fmt: skip
        if spend > budget:
            tally.skip(FEE_WALLET_SHORT)
            left.extend(moves)
            continue
        if len(transfers) + len(planned) > max_transfers:
            tally.skip(BATCH_FULL)
            left.extend(moves)
            continue
        budget -= spend
        nonce += sum(1 for t in planned if t.purpose == "fee_topup")
        transfers.extend(planned)
        tally.add(planned)
    return SweepPlan(transfers, _summary(kind, policy, tally)), left


# --- Tron ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TronWallet:
    """What is left of the fee wallet as addresses are added to the plan."""

    budget: int
    delegatable: int
    staked_bandwidth: int
    free_bandwidth: int


@dataclass(frozen=True)
class _TronContext:
    fee_wallet: TronFeeWallet
    fees: TronFees
    block: TronBlockRef
    policy: SweepPolicy
    delegate: bool


def plan_tron_sweep(
    *,
    deposits: Sequence[TronDeposit],
    fee_wallet: TronFeeWallet,
    fees: TronFees,
    block: TronBlockRef,
    policy: SweepPolicy,
    delegate: bool,
    max_transfers: int = MAX_TRANSFERS,
) -> SweepPlan:
    """`delegate`: delegation is allowed (GATEWAY_SWEEP_TRON_DELEGATION=auto); it is used
    for an address when the fee wallet can still delegate the stake its sweeps need."""
    ctx = _TronContext(fee_wallet, fees, block, policy, delegate)
    wallet = _TronWallet(
        fee_wallet.balance,
        fee_wallet.delegatable_energy_sun,
        fee_wallet.staked_bandwidth_left,
        fee_wallet.free_bandwidth_left,
    )
    transfers: list[PlannedTransfer] = []
    tally = _Tally()
    for index in _by_value(deposits):
        deposit = deposits[index]
        picked = _picked(deposit.holdings, policy)
        if not picked:
            if _below_threshold(deposit.holdings, picked):
                tally.skip(BELOW_THRESHOLD)
            continue
        moves = sweep_moves(deposit.address, picked, policy.treasury)
        energies = [policy.with_margin(h.estimate) for h in picked]
        if any(e * fees.energy_price > MAX_FEE_LIMIT_SUN for e in energies):
            tally.skip(FEE_LIMIT_TOO_HIGH)
            continue
        planned, after = _tron_address(ctx, deposit, moves, energies, wallet)
        if _is_dust(sum(t.estimated_fee_base_units for t in planned), picked, policy):
            tally.skip(DUST)
            continue
        if after.budget < 0:
            tally.skip(FEE_WALLET_SHORT)
            continue
        if len(transfers) + len(planned) > max_transfers:
            tally.skip(BATCH_FULL)
            continue
        wallet = after
        transfers.extend(planned)
        tally.add(planned)
    return SweepPlan(transfers, _summary("sweep", policy, tally))


def plan_tron_moves(
    *,
    kind: str,
    sources: Sequence[tuple[TronDeposit, Sequence[Move]]],
    fee_wallet: TronFeeWallet,
    fees: TronFees,
    block: TronBlockRef,
    policy: SweepPolicy,
    delegate: bool,
    max_transfers: int = MAX_TRANSFERS,
) -> tuple[SweepPlan, list[Move]]:
    """`plan_evm_moves` for Tron: energy delegated where the fee wallet can, else TRX."""
    ctx = _TronContext(fee_wallet, fees, block, policy, delegate)
    wallet = _TronWallet(
        fee_wallet.balance,
        fee_wallet.delegatable_energy_sun,
        fee_wallet.staked_bandwidth_left,
        fee_wallet.free_bandwidth_left,
    )
    transfers: list[PlannedTransfer] = []
    left: list[Move] = []
    tally = _Tally()
    for deposit, moves in sources:
        if not moves:
            continue
        energies = [policy.with_margin(m.holding.estimate) for m in moves]
        if any(e * fees.energy_price > MAX_FEE_LIMIT_SUN for e in energies):
            tally.skip(FEE_LIMIT_TOO_HIGH)
            left.extend(moves)
            continue
        planned, after = _tron_address(ctx, deposit, moves, energies, wallet)
        if after.budget < 0:
            tally.skip(FEE_WALLET_SHORT)
            left.extend(moves)
            continue
        if len(transfers) + len(planned) > max_transfers:
            tally.skip(BATCH_FULL)
            left.extend(moves)
            continue
        wallet = after
        transfers.extend(planned)
        tally.add(planned)
    return SweepPlan(transfers, _summary(kind, policy, tally)), left


def _tron_address(
    ctx: _TronContext,
    deposit: TronDeposit,
    moves: Sequence[Move],
    energies: Sequence[int],
    wallet: _TronWallet,
) -> tuple[list[PlannedTransfer], _TronWallet]:
    """The address's transfers and the fee wallet after them (a negative budget: it
    cannot pay). Delegation first, when allowed and enough staked energy is left."""
    if ctx.delegate:
        stake = ctx.fees.stake_for(sum(energies))
        if stake <= wallet.delegatable:
            delegated = _tron_plan(ctx, deposit, moves, energies, wallet, stake)
            if delegated[1].budget >= 0:
                return delegated
    return _tron_plan(ctx, deposit, moves, energies, wallet, 0)


def _tron_plan(
    ctx: _TronContext,
    deposit: TronDeposit,
    moves: Sequence[Move],
    energies: Sequence[int],
    wallet: _TronWallet,
    stake: int,
) -> tuple[list[PlannedTransfer], _TronWallet]:
    fees = ctx.fees
    sweeps: list[PlannedTransfer] = []
    # The address's own bandwidth pays its sweeps' bytes while it lasts (a new account
    # starts with the free allowance); what it does not cover burns from its TRX.
    own_bandwidth = deposit.bandwidth_left if deposit.activated else fees.free_bandwidth
    needed = 0  # TRX the address must hold for its sweeps
    for move, energy in zip(moves, energies, strict=True):
        holding = move.holding
        fee_limit = max(1, energy * fees.energy_price)
        size = _trigger_size(ctx, deposit, move, fee_limit)
        burn = 0
        if own_bandwidth >= size:
            own_bandwidth -= size
        else:
            burn = size * fees.bandwidth_price
        energy_cost = 0 if stake else holding.estimate * fees.energy_price
        needed += burn + (0 if stake else fee_limit)
        sweeps.append(
            _tron_transfer(
                ctx,
                key=move.key,
                purpose=move.purpose,
                source=(deposit.address, deposit.path),
                destination=(move.destination, None),
                asset=(holding.symbol, holding.contract, holding.decimals),
                amount=move.amount,
                reference=move.reference,
                merchant_id=move.merchant_id,
                max_fee=fee_limit + size * fees.bandwidth_price,
                estimated_fee=energy_cost + burn,
                contract_type="TriggerSmartContract",
                fee_limit=fee_limit,
                estimated_energy=holding.estimate,
                estimated_bandwidth=size,
            )
        )
    shortfall = needed - deposit.trx_balance
    if not deposit.activated:
        shortfall = max(shortfall, ACTIVATION_AMOUNT_SUN)
    planned: list[PlannedTransfer] = []
    first_key: str | None = None
    if shortfall > 0:
        topup, wallet = _topup(ctx, deposit, shortfall, wallet)
        planned.append(topup)
        first_key = topup.key
    if stake:
        delegation, wallet = _delegation(ctx, deposit, stake, wallet, first_key, undo=False)
        planned.append(delegation)
        wallet = replace(wallet, delegatable=wallet.delegatable - stake)
        previous = delegation.key
        for sweep in sweeps:  # in a chain: the undelegation waits for the last one
            planned.append(replace(sweep, depends_on=previous))
            previous = sweep.key
        undelegation, wallet = _delegation(ctx, deposit, stake, wallet, previous, undo=True)
        planned.append(undelegation)
    else:
        planned.extend(replace(sweep, depends_on=first_key) for sweep in sweeps)
    return planned, wallet


def _topup(
    ctx: _TronContext, deposit: TronDeposit, amount: int, wallet: _TronWallet
) -> tuple[PlannedTransfer, _TronWallet]:
    fees = ctx.fees
    size = _transfer_size(ctx, deposit, amount)
    max_fee = size * fees.bandwidth_price
    if deposit.activated:
        estimated, wallet = _fee_wallet_bytes(ctx, size, wallet)
    else:
        # Creating the account: staked bandwidth may pay the bytes, the free allowance
        # never does (BandwidthProcessor.consumeForCreateNewAccount), else 0.1 TRX burns.
        max_fee += fees.create_new_account_fee + fees.create_account_fee
        estimated = fees.create_new_account_fee
        if wallet.staked_bandwidth >= size:
            wallet = replace(wallet, staked_bandwidth=wallet.staked_bandwidth - size)
        else:
            estimated += fees.create_account_fee
    wallet = replace(wallet, budget=wallet.budget - amount - max_fee)
    topup = _tron_transfer(
        ctx,
        key=f"topup:{deposit.address}",
        purpose="fee_topup",
        source=(ctx.fee_wallet.address, ctx.fee_wallet.path),
        destination=(deposit.address, deposit.path),
        asset=("TRX", None, TRX_DECIMALS),
        amount=amount,
        max_fee=max_fee,
        estimated_fee=estimated,
        contract_type="TransferContract",
        estimated_bandwidth=size,
    )
    return topup, wallet


def _delegation(
    ctx: _TronContext,
    deposit: TronDeposit,
    stake: int,
    wallet: _TronWallet,
    depends_on: str | None,
    *,
    undo: bool,
) -> tuple[PlannedTransfer, _TronWallet]:
    kind = "UnDelegateResourceContract" if undo else "DelegateResourceContract"
    size = _resource_size(ctx, deposit, stake, kind)
    estimated, wallet = _fee_wallet_bytes(ctx, size, wallet)
    max_fee = size * ctx.fees.bandwidth_price
    wallet = replace(wallet, budget=wallet.budget - max_fee)
    transfer = _tron_transfer(
        ctx,
        key=f"{'undelegate' if undo else 'delegate'}:{deposit.address}",
        purpose="resource_undelegation" if undo else "resource_delegation",
        source=(ctx.fee_wallet.address, ctx.fee_wallet.path),
        destination=(deposit.address, deposit.path),
        asset=("TRX", None, TRX_DECIMALS),
        amount=stake,
        max_fee=max_fee,
        estimated_fee=estimated,
        contract_type=kind,
        resource="ENERGY",
        lock=None if undo else False,
        lock_period=None if undo else 0,
        estimated_bandwidth=size,
        depends_on=depends_on,
    )
    return transfer, wallet


def _fee_wallet_bytes(ctx: _TronContext, size: int, wallet: _TronWallet) -> tuple[int, _TronWallet]:
    """The fee wallet's expected burn for `size` bytes: staked bandwidth first, then its
    free allowance, else every byte at the bandwidth price (java-tron's order)."""
    if wallet.staked_bandwidth >= size:
        return 0, replace(wallet, staked_bandwidth=wallet.staked_bandwidth - size)
    if wallet.free_bandwidth >= size:
        return 0, replace(wallet, free_bandwidth=wallet.free_bandwidth - size)
    return size * ctx.fees.bandwidth_price, wallet


def _tron_transfer(
    ctx: _TronContext,
    *,
    key: str,
    purpose: str,
    source: tuple[str, str],
    destination: tuple[str, str | None],
    asset: tuple[str, str | None, int],
    amount: int,
    max_fee: int,
    estimated_fee: int,
    contract_type: str,
    depends_on: str | None = None,
    reference: str | None = None,
    merchant_id: str | None = None,
    fee_limit: int | None = None,
    resource: str | None = None,
    lock: bool | None = None,
    lock_period: int | None = None,
    estimated_energy: int | None = None,
    estimated_bandwidth: int | None = None,
) -> PlannedTransfer:
    block = ctx.block
    return PlannedTransfer(
        key=key,
        purpose=purpose,
        network=ctx.policy.network,
        source_address=source[0],
        source_path=source[1],
        destination_address=destination[0],
        destination_path=destination[1],
        asset=asset[0],
        token_contract=asset[1],
        decimals=asset[2],
        amount_base_units=amount,
        max_fee_base_units=max_fee,
        estimated_fee_base_units=estimated_fee,
        depends_on=depends_on,
        reference=reference,
        merchant_id=merchant_id,
        tron_contract_type=contract_type,
        ref_block_bytes=block.ref_block_bytes,
        ref_block_hash=block.ref_block_hash,
        expiration_ms=block.expiration_ms,
        timestamp_ms=block.timestamp_ms,
        fee_limit=fee_limit,
        resource=resource,
        lock=lock,
        lock_period=lock_period,
        estimated_energy=estimated_energy,
        estimated_bandwidth=estimated_bandwidth,
    )


# --- Tron transaction sizes (the bytes bandwidth is charged for) ------------------------------


def _size(ctx: _TronContext, contract: tron_proto.TronContract, fee_limit: int = 0) -> int:
    block = ctx.block
    raw = tron_proto.encode_raw(
        ref_block_bytes=bytes.fromhex(block.ref_block_bytes),
        ref_block_hash=bytes.fromhex(block.ref_block_hash),
        expiration=block.expiration_ms,
        timestamp=block.timestamp_ms,
        contract=contract,
        fee_limit=fee_limit,
    )
    return len(tron_proto.encode_signed(raw, SIGNATURE)) + RESULT_SIZE


def _trigger_size(ctx: _TronContext, deposit: TronDeposit, move: Move, fee_limit: int) -> int:
    to = tron_address_bytes(move.destination)
    data = token_transfer_data(to[1:], move.amount)
    contract = tron_proto.trigger_smart_contract(
        tron_address_bytes(deposit.address), tron_address_bytes(move.holding.contract), data
    )
    return _size(ctx, contract, fee_limit)


def _transfer_size(ctx: _TronContext, deposit: TronDeposit, amount: int) -> int:
    contract = tron_proto.transfer_contract(
        tron_address_bytes(ctx.fee_wallet.address), tron_address_bytes(deposit.address), amount
    )
    return _size(ctx, contract)


def _resource_size(ctx: _TronContext, deposit: TronDeposit, stake: int, kind: str) -> int:
    owner = tron_address_bytes(ctx.fee_wallet.address)
    receiver = tron_address_bytes(deposit.address)
    if kind == "DelegateResourceContract":
        contract = tron_proto.delegate_resource_contract(owner, receiver, stake, "ENERGY", False, 0)
    else:
        contract = tron_proto.undelegate_resource_contract(owner, receiver, stake, "ENERGY")
    return _size(ctx, contract)
