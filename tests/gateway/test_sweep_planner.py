"""The sweep planner (outgoing/planner.py): pure arithmetic, held to tables and properties.

Totals conserve, top-ups cover exactly gas limit x max fee less what is there, fee-wallet
nonces are consecutive and unique, nothing below a threshold is swept, dust is left,
Tron chooses delegation when staked energy is there and burning otherwise, a new Tron
account's activation is paid and counted, and every amount is an int.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tronpy.keys import PrivateKey

from stablegate_gateway.outgoing import planner, sweep_facts
from stablegate_gateway.outgoing.planner import (
    EVM_TRANSFER_GAS,
    TRX,
    Eip1559Fees,
    EvmDeposit,
    EvmFeeWallet,
    LegacyFees,
    PlanningError,
    SweepPlan,
    SweepPolicy,
    TokenHolding,
    TronBlockRef,
    TronDeposit,
    TronFees,
    TronFeeWallet,
    plan_evm_sweep,
    plan_tron_sweep,
)
from stablegate_gateway.outgoing.plans import PlannedTransfer

GWEI = 10**9
USDT_ETH = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
USDC_ETH = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
TREASURY_ETH = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"
FEE_ETH = "0x71C7656EC7ab88b098defB751B7401B5f6d8976F"
EVM_FEE_PATH = "m/44'/60'/0'/1/0"
TRON_FEE_PATH = "m/44'/195'/0'/1/0"


def tron_address(seed: int) -> str:
    return str(PrivateKey(seed.to_bytes(32, "big")).public_key.to_base58check_address())


TREASURY_TRON = tron_address(10_001)
FEE_TRON = tron_address(10_002)
USDT_TRON = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
USDC_TRON = "TEkxiTehnzSmSe2XqrBj4w32RUN966rdz8"
TRON_ADDRESSES = [tron_address(i + 1) for i in range(12)]


def evm_address(i: int) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address("0x" + f"{i + 1:040x}"))


def policy(
    network: str = "ethereum",
    *,
    min_usdt: int = 10 * 10**6,
    share: str = "0.05",
    margin: str = "1.25",
    price: str | None = "3000",
) -> SweepPolicy:
    native = {"ethereum": ("ETH", 18), "bsc": ("BNB", 18), "tron": ("TRX", 6)}[network]
    treasury = TREASURY_TRON if network == "tron" else TREASURY_ETH
    if network == "tron" and price == "3000":
        price = "0.25"
    return SweepPolicy(
        network=network,
        native_symbol=native[0],
        native_decimals=native[1],
        min_amounts={"USDT": min_usdt, "USDC": min_usdt},
        max_fee_share=Decimal(share),
        gas_margin=Decimal(margin),
        native_price_usd=None if price is None else Decimal(price),
        treasury=treasury,
    )


def usdt(balance: int, estimate: int = 46_109, *, tron: bool = False) -> TokenHolding:
    contract = USDT_TRON if tron else USDT_ETH
    return TokenHolding("USDT", contract, 6, balance, estimate)


def usdc(balance: int, estimate: int = 46_109, *, tron: bool = False) -> TokenHolding:
    contract = USDC_TRON if tron else USDC_ETH
    return TokenHolding("USDC", contract, 6, balance, estimate)


def evm_deposit(i: int, *holdings: TokenHolding, native: int = 0, nonce: int = 0) -> EvmDeposit:
    return EvmDeposit(evm_address(i), f"m/44'/60'/0'/0/{i}", native, nonce, holdings)


def evm_wallet(balance: int = 10**21, nonce: int = 7) -> EvmFeeWallet:
    return EvmFeeWallet(FEE_ETH, EVM_FEE_PATH, balance, nonce)


ETH_FEES = Eip1559Fees(base_fee=10 * GWEI, priority_fee=1 * GWEI)
BSC_FEES = LegacyFees(gas_price=GWEI // 10)
TRON_FEES = TronFees(
    energy_price=100,
    bandwidth_price=1_000,
    create_new_account_fee=1 * TRX,
    create_account_fee=TRX // 10,
    free_bandwidth=600,
    total_energy_limit=180_000_000_000,
    total_energy_weight=19_000_000_000,
)
BLOCK = TronBlockRef("1a2b", "0011223344556677", 1_760_000_000_000, 1_760_000_000_000 + 3_000_000)


def tron_deposit(
    i: int, *holdings: TokenHolding, trx: int = 0, activated: bool = False, bandwidth: int = 0
) -> TronDeposit:
    return TronDeposit(
        TRON_ADDRESSES[i], f"m/44'/195'/0'/0/{i}", trx, activated, bandwidth, holdings
    )


def tron_wallet(
    balance: int = 100_000 * TRX, delegatable: int = 0, staked_bw: int = 0, free_bw: int = 600
) -> TronFeeWallet:
    return TronFeeWallet(FEE_TRON, TRON_FEE_PATH, balance, delegatable, staked_bw, free_bw)


def by_key(plan: SweepPlan) -> dict[str, PlannedTransfer]:
    return {t.key: t for t in plan.transfers}


def ceil_margin(estimate: int, margin: str = "1.25") -> int:
    n, d = Decimal(margin).as_integer_ratio()
    return -(-estimate * n // d)


# --- EVM -------------------------------------------------------------------------------------


def test_ethereum_topup_covers_gas_limit_times_max_fee_less_the_balance_there() -> None:
    deposits = [
        evm_deposit(0, usdt(500 * 10**6, 46_109), nonce=3),
        evm_deposit(1, usdt(100 * 10**6, 41_309), usdc(20 * 10**6, 46_000), native=10**14),
    ]
    plan = plan_evm_sweep(
        deposits=deposits, fee_wallet=evm_wallet(), fees=ETH_FEES, chain_id=1, policy=policy()
    )
    t = by_key(plan)
    max_fee = 2 * 10 * GWEI + GWEI
    first = t[f"topup:{evm_address(0)}"]
    assert first.amount_base_units == ceil_margin(46_109) * max_fee
    assert (first.nonce, first.gas_limit, first.max_fee_per_gas) == (7, EVM_TRANSFER_GAS, max_fee)
    assert first.max_priority_fee_per_gas == GWEI
    assert first.gas_price is None
    assert first.destination_path == "m/44'/60'/0'/0/0"
    second = t[f"topup:{evm_address(1)}"]
    limits = ceil_margin(41_309) + ceil_margin(46_000)
    assert second.amount_base_units == limits * max_fee - 10**14
    assert second.nonce == 8  # consecutive from the fee wallet's pending nonce
    sweep = t[f"sweep:{evm_address(0)}:USDT"]
    assert (sweep.nonce, sweep.depends_on, sweep.gas_limit) == (3, first.key, ceil_margin(46_109))
    assert (sweep.destination_address, sweep.amount_base_units) == (TREASURY_ETH, 500 * 10**6)
    assert sweep.max_fee_base_units == ceil_margin(46_109) * max_fee
    assert sweep.estimated_fee_base_units == 46_109 * 11 * GWEI
    nonces = [t[f"sweep:{evm_address(1)}:{s}"].nonce for s in ("USDT", "USDC")]
    assert nonces == [0, 1]
    assert plan.summary.totals == {"USDC": 20 * 10**6, "USDT": 600 * 10**6}
    assert plan.summary.addresses == 2
    assert plan.summary.network_cost_max_base_units == sum(
        x.max_fee_base_units for x in plan.transfers
    )
    assert plan.summary.network_cost_usd is not None
    assert plan.summary.network_cost_max_usd is not None


def test_no_topup_when_the_native_balance_already_covers_the_sweep() -> None:
    need = ceil_margin(46_109) * (2 * 10 * GWEI + GWEI)
    plan = plan_evm_sweep(
        deposits=[evm_deposit(0, usdt(50 * 10**6), native=need)],
        fee_wallet=evm_wallet(),
        fees=ETH_FEES,
        chain_id=1,
        policy=policy(),
    )
    assert [t.purpose for t in plan.transfers] == ["sweep"]
    assert plan.transfers[0].depends_on is None


def test_bsc_is_legacy_priced() -> None:
    plan = plan_evm_sweep(
        deposits=[evm_deposit(0, usdt(50 * 10**6))],
        fee_wallet=evm_wallet(),
        fees=BSC_FEES,
        chain_id=56,
        policy=policy("bsc"),
    )
    for t in plan.transfers:
        assert t.gas_price == GWEI // 10
        assert t.max_fee_per_gas is None
        assert t.chain_id == 56
    topup = plan.transfers[0]
    assert topup.asset == "BNB"
    assert topup.amount_base_units == ceil_margin(46_109) * GWEI // 10


@pytest.mark.parametrize(
    ("balance", "threshold", "swept"),
    [
        (10 * 10**6, 10 * 10**6, True),  # at the threshold
        (10 * 10**6 - 1, 10 * 10**6, False),
        (1, 0, True),
        (0, 0, False),  # nothing there: not even counted as skipped
    ],
)
def test_threshold(balance: int, threshold: int, swept: bool) -> None:
    plan = plan_evm_sweep(
        deposits=[evm_deposit(0, usdt(balance))],
        fee_wallet=evm_wallet(),
        fees=ETH_FEES,
        chain_id=1,
        policy=policy(min_usdt=threshold, price=None),
    )
    assert bool(plan.transfers) is swept
    expected = {} if swept or balance == 0 else {planner.BELOW_THRESHOLD: 1}
    assert plan.summary.skipped == expected


# Sweep cost at base 10 gwei + tip 1: (21,000 + 46,109) x 11 gwei = 738,199 gwei
# ≈ 0.000738 ETH; at 3,000 USD/ETH ≈ 2.2146 USD.
@pytest.mark.parametrize(
    ("usdt_amount", "price", "share", "dust"),
    [
        (100, "3000", "0.05", False),  # 2.21 ≤ 5.00
        (44, "3000", "0.05", True),  # 2.21 > 2.20
        (45, "3000", "0.05", False),  # 2.21 ≤ 2.25
        (45, "30000", "0.05", True),
        (1000, "30000", "0.01", True),  # 22.15 > 10
        (10, None, "0.01", False),  # unknown price: never dust
    ],
)
def test_dust(usdt_amount: int, price: str | None, share: str, dust: bool) -> None:
    plan = plan_evm_sweep(
        deposits=[evm_deposit(0, usdt(usdt_amount * 10**6))],
        fee_wallet=evm_wallet(),
        fees=ETH_FEES,
        chain_id=1,
        policy=policy(share=share, price=price),
    )
    assert (plan.summary.skipped == {planner.DUST: 1}) is dust
    assert bool(plan.transfers) is not dust
    if price is None:
        assert plan.summary.network_cost_usd is None
        assert any("price is unknown" in note for note in plan.summary.notes)


def test_a_short_fee_wallet_funds_the_largest_addresses_first() -> None:
    per_topup = ceil_margin(46_109) * 21 * GWEI + EVM_TRANSFER_GAS * 21 * GWEI
    plan = plan_evm_sweep(
        deposits=[evm_deposit(0, usdt(20 * 10**6)), evm_deposit(1, usdt(900 * 10**6))],
        fee_wallet=evm_wallet(balance=per_topup + 1),
        fees=ETH_FEES,
        chain_id=1,
        policy=policy(price=None),
    )
    assert {t.source_address for t in plan.transfers if t.purpose == "sweep"} == {evm_address(1)}
    assert plan.summary.skipped == {planner.FEE_WALLET_SHORT: 1}
    assert plan.transfers[0].nonce == 7


def test_a_plan_stops_at_what_one_signing_request_takes() -> None:
    deposits = [evm_deposit(i, usdt((100 + i) * 10**6)) for i in range(3)]
    plan = plan_evm_sweep(
        deposits=deposits,
        fee_wallet=evm_wallet(),
        fees=ETH_FEES,
        chain_id=1,
        policy=policy(),
        max_transfers=3,
    )
    assert len(plan.transfers) == 2  # one top-up and one sweep: a second pair is too many
    assert plan.transfers[1].source_address == evm_address(2)  # the largest
    assert plan.summary.skipped == {planner.BATCH_FULL: 2}


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: usdt(-1), "TokenHolding.balance"),
        (lambda: evm_deposit(0, native=-5), "EvmDeposit.native_balance"),
        (lambda: LegacyFees(0), "LegacyFees.gas_price"),
        (lambda: Eip1559Fees(True, 1), "Eip1559Fees.base_fee"),  # type: ignore[arg-type]
        (lambda: policy(margin="0.9"), "SweepPolicy.gas_margin"),
        (lambda: policy(share="0"), "SweepPolicy.max_fee_share"),
        (lambda: TronBlockRef("1a2b", "00", 1, 2), "TronBlockRef"),
        (lambda: TronBlockRef("1a2b", "0011223344556677", 5, 5), "TronBlockRef.expiration_ms"),
    ],
)
def test_impossible_facts_are_refused_naming_the_field(build: object, field: str) -> None:
    with pytest.raises(PlanningError, match=field.replace(".", r"\.")):
        build()  # type: ignore[operator]


# --- Tron ------------------------------------------------------------------------------------


def test_tron_burn_tops_up_the_fee_limit_and_pays_the_activation() -> None:
    plan = plan_tron_sweep(
        deposits=[tron_deposit(0, usdt(500 * 10**6, 64_285, tron=True))],
        fee_wallet=tron_wallet(),
        fees=TRON_FEES,
        block=BLOCK,
        policy=policy("tron", price="0.25"),
        delegate=True,  # allowed, but the fee wallet has no stake
    )
    topup, sweep = plan.transfers
    energy = ceil_margin(64_285)
    assert sweep.fee_limit == energy * 100
    assert sweep.tron_contract_type == "TriggerSmartContract"
    assert sweep.depends_on == topup.key
    assert sweep.estimated_energy == 64_285
    # A new account: its free allowance pays the sweep's bytes, the TRX pays the energy.
    assert topup.amount_base_units == energy * 100
    assert topup.tron_contract_type == "TransferContract"
    assert topup.estimated_fee_base_units == TRX + TRX // 10
    assert topup.max_fee_base_units == topup.estimated_bandwidth * 1_000 + TRX + TRX // 10  # type: ignore[operator]
    assert sweep.estimated_fee_base_units == 64_285 * 100
    assert sweep.max_fee_base_units == sweep.fee_limit + sweep.estimated_bandwidth * 1_000  # type: ignore[operator]
    assert (topup.ref_block_bytes, topup.expiration_ms) == (
        BLOCK.ref_block_bytes,
        BLOCK.expiration_ms,
    )
    assert plan.summary.network_cost_base_units == TRX + TRX // 10 + 64_285 * 100


def test_tron_activation_bytes_on_staked_bandwidth_burn_no_create_account_fee() -> None:
    plan = plan_tron_sweep(
        deposits=[tron_deposit(0, usdt(500 * 10**6, 64_285, tron=True))],
        fee_wallet=tron_wallet(staked_bw=10_000),
        fees=TRON_FEES,
        block=BLOCK,
        policy=policy("tron"),
        delegate=False,
    )
    assert plan.transfers[0].estimated_fee_base_units == TRX


def test_tron_activated_address_with_trx_needs_only_the_difference() -> None:
    plan = plan_tron_sweep(
        deposits=[
            tron_deposit(
                0, usdt(50 * 10**6, 64_285, tron=True), trx=2 * TRX, activated=True, bandwidth=600
            )
        ],
        fee_wallet=tron_wallet(),
        fees=TRON_FEES,
        block=BLOCK,
        policy=policy("tron"),
        delegate=False,
    )
    topup, _ = plan.transfers
    assert topup.amount_base_units == ceil_margin(64_285) * 100 - 2 * TRX
    assert topup.estimated_fee_base_units == 0  # the fee wallet's free bandwidth


def test_tron_sweep_bytes_beyond_the_address_bandwidth_are_topped_up() -> None:
    plan = plan_tron_sweep(
        deposits=[tron_deposit(0, usdt(50 * 10**6, 64_285, tron=True), activated=True)],
        fee_wallet=tron_wallet(),
        fees=TRON_FEES,
        block=BLOCK,
        policy=policy("tron"),
        delegate=False,
    )
    topup, sweep = plan.transfers
    burn = sweep.estimated_bandwidth * 1_000  # type: ignore[operator]
    assert topup.amount_base_units == sweep.fee_limit + burn  # type: ignore[operator]
    assert sweep.estimated_fee_base_units == 64_285 * 100 + burn


def test_tron_delegates_staked_energy_when_the_fee_wallet_has_it() -> None:
    plan = plan_tron_sweep(
        deposits=[
            tron_deposit(
                0, usdt(500 * 10**6, 64_285, tron=True), usdc(30 * 10**6, 64_285, tron=True)
            )
        ],
        fee_wallet=tron_wallet(delegatable=1_000_000 * TRX),
        fees=TRON_FEES,
        block=BLOCK,
        policy=policy("tron"),
        delegate=True,
    )
    purposes = [t.purpose for t in plan.transfers]
    assert purposes == [
        "fee_topup",
        "resource_delegation",
        "sweep",
        "sweep",
        "resource_undelegation",
    ]
    topup, delegation, first, second, undelegation = plan.transfers
    energy = 2 * ceil_margin(64_285)
    stake = delegation.amount_base_units
    whole = stake // TRX
    assert stake % TRX == 0
    # Exactly enough whole TRX: the devnet's (java-tron's) integer formula gives >= energy.
    assert whole * TRON_FEES.total_energy_limit // TRON_FEES.total_energy_weight >= energy
    assert (whole - 1) * TRON_FEES.total_energy_limit // TRON_FEES.total_energy_weight < energy
    assert undelegation.amount_base_units == stake
    assert (delegation.resource, delegation.lock, delegation.lock_period) == ("ENERGY", False, 0)
    assert (undelegation.resource, undelegation.lock) == ("ENERGY", None)
    assert delegation.destination_address == TRON_ADDRESSES[0]
    assert delegation.depends_on == topup.key
    assert first.depends_on == delegation.key
    assert second.depends_on == first.key
    assert undelegation.depends_on == second.key
    # Activation only: 1 sun, the new account's free bandwidth pays the first sweep's bytes.
    burn = second.estimated_bandwidth * 1_000  # type: ignore[operator]
    assert topup.amount_base_units == burn
    assert first.estimated_fee_base_units == 0
    assert second.estimated_fee_base_units == burn
    assert first.fee_limit == ceil_margin(64_285) * 100  # still the ceiling


def test_tron_activation_only_when_delegation_covers_everything() -> None:
    plan = plan_tron_sweep(
        deposits=[tron_deposit(0, usdt(500 * 10**6, 64_285, tron=True))],
        fee_wallet=tron_wallet(delegatable=1_000_000 * TRX),
        fees=TRON_FEES,
        block=BLOCK,
        policy=policy("tron"),
        delegate=True,
    )
    assert plan.transfers[0].amount_base_units == planner.ACTIVATION_AMOUNT_SUN
    assert plan.transfers[0].estimated_fee_base_units == TRX + TRX // 10


@pytest.mark.parametrize(
    ("delegatable", "delegate", "delegated"),
    [
        (10**6 * TRX, True, True),
        (10**6 * TRX, False, False),  # GATEWAY_SWEEP_TRON_DELEGATION=never
        (100 * TRX, True, False),  # not enough stake: burn
    ],
)
def test_tron_delegation_or_burn(delegatable: int, delegate: bool, delegated: bool) -> None:
    plan = plan_tron_sweep(
        deposits=[
            tron_deposit(0, usdt(500 * 10**6, 64_285, tron=True), activated=True, bandwidth=600)
        ],
        fee_wallet=tron_wallet(delegatable=delegatable),
        fees=TRON_FEES,
        block=BLOCK,
        policy=policy("tron"),
        delegate=delegate,
    )
    purposes = [t.purpose for t in plan.transfers]
    if delegated:
        assert purposes == ["resource_delegation", "sweep", "resource_undelegation"]
    else:
        assert purposes == ["fee_topup", "sweep"]


def test_tron_stake_is_shared_out_until_it_runs_out() -> None:
    stake_one = TRON_FEES.stake_for(ceil_margin(64_285))
    deposits = [
        tron_deposit(i, usdt((100 + i) * 10**6, 64_285, tron=True), activated=True, bandwidth=600)
        for i in range(3)
    ]
    plan = plan_tron_sweep(
        deposits=deposits,
        fee_wallet=tron_wallet(delegatable=2 * stake_one + TRX),
        fees=TRON_FEES,
        block=BLOCK,
        policy=policy("tron"),
        delegate=True,
    )
    delegated = {
        t.destination_address for t in plan.transfers if t.purpose == "resource_delegation"
    }
    burned = {t.destination_address for t in plan.transfers if t.purpose == "fee_topup"}
    assert delegated == {TRON_ADDRESSES[2], TRON_ADDRESSES[1]}  # the largest first
    assert burned == {TRON_ADDRESSES[0]}


def test_tron_dust_counts_the_activation() -> None:
    # 1.1 TRX activation + 6.43 TRX energy at 0.25 USD ≈ 1.88 USD: dust for 30 USDT at 5 %.
    plan = plan_tron_sweep(
        deposits=[tron_deposit(0, usdt(30 * 10**6, 64_285, tron=True))],
        fee_wallet=tron_wallet(),
        fees=TRON_FEES,
        block=BLOCK,
        policy=policy("tron", price="0.25"),
        delegate=False,
    )
    assert plan.transfers == []
    assert plan.summary.skipped == {planner.DUST: 1}


# --- properties ------------------------------------------------------------------------------

INT_FIELDS = [f.name for f in dataclasses.fields(PlannedTransfer) if "int" in str(f.type)]


def assert_ints(transfers: Sequence[PlannedTransfer]) -> None:
    for t in transfers:
        for name in INT_FIELDS:
            value = getattr(t, name)
            assert value is None or type(value) is int, (t.key, name, value)
        assert t.amount_base_units > 0


balances = st.integers(min_value=0, max_value=10**15)
evm_holdings = st.builds(
    lambda b1, g1, b2, g2: tuple(
        h for h in (usdt(b1, g1), usdc(b2, g2)) if h.balance or h.estimate
    ),
    balances, st.integers(30_000, 90_000), balances, st.integers(30_000, 90_000),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    holdings=st.lists(evm_holdings, min_size=0, max_size=8),
    natives=st.lists(st.integers(0, 10**16), min_size=8, max_size=8),
    nonces=st.lists(st.integers(0, 1000), min_size=8, max_size=8),
    base_fee=st.integers(1, 500 * GWEI),
    tip=st.integers(0, 5 * GWEI),
    margin=st.sampled_from(["1", "1.1", "1.25", "1.5", "2.333"]),
    threshold=st.integers(0, 10**9),
    legacy=st.booleans(),
    wallet_nonce=st.integers(0, 10**6),
)
def test_evm_plan_properties(
    holdings: list[tuple[TokenHolding, ...]],
    natives: list[int],
    nonces: list[int],
    base_fee: int,
    tip: int,
    margin: str,
    threshold: int,
    legacy: bool,
    wallet_nonce: int,
) -> None:
    deposits = [
        evm_deposit(i, *h, native=natives[i], nonce=nonces[i]) for i, h in enumerate(holdings)
    ]
    fees: Eip1559Fees | LegacyFees = LegacyFees(base_fee) if legacy else Eip1559Fees(base_fee, tip)
    rules = policy(min_usdt=threshold, margin=margin, price=None)  # no dust: all must go
    plan = plan_evm_sweep(
        deposits=deposits, fee_wallet=evm_wallet(10**30, wallet_nonce), fees=fees, chain_id=1,
        policy=rules,
    )  # fmt: skip
    assert_ints(plan.transfers)
    picked = [h for d in deposits for h in d.holdings if h.balance and h.balance >= threshold]
    sweeps = [t for t in plan.transfers if t.purpose == "sweep"]
    assert sum(t.amount_base_units for t in sweeps) == sum(h.balance for h in picked)
    assert len(sweeps) == len(picked)
    assert all(t.amount_base_units >= threshold for t in sweeps)
    topups = [t for t in plan.transfers if t.purpose == "fee_topup"]
    assert [t.nonce for t in topups] == list(range(wallet_nonce, wallet_nonce + len(topups)))
    pairs = [(t.source_address, t.nonce) for t in plan.transfers]
    assert len(set(pairs)) == len(pairs)
    per_gas = fees.max_fee_per_gas
    for deposit in deposits:
        mine = [t for t in sweeps if t.source_address == deposit.address]
        need = sum(t.gas_limit * per_gas for t in mine)  # type: ignore[operator]
        topup = [t for t in topups if t.destination_address == deposit.address]
        if mine and need > deposit.native_balance:
            assert [t.amount_base_units for t in topup] == [need - deposit.native_balance]
            assert all(t.depends_on == topup[0].key for t in mine)
        else:
            assert topup == []
            assert all(t.depends_on is None for t in mine)
        assert [t.nonce for t in mine] == list(range(deposit.nonce, deposit.nonce + len(mine)))
        for t in mine:
            holding = next(h for h in deposit.holdings if h.symbol == t.asset)
            assert t.gas_limit == ceil_margin(holding.estimate, margin)
            assert t.gas_limit * per_gas == t.max_fee_base_units  # type: ignore[operator]
    assert plan.summary.network_cost_max_base_units == sum(
        t.max_fee_base_units for t in plan.transfers
    )


tron_holdings = st.builds(
    lambda b1, e1, b2, e2: (usdt(b1, e1, tron=True), usdc(b2, e2, tron=True)),
    balances, st.integers(10_000, 140_000), balances, st.integers(10_000, 140_000),
)  # fmt: skip


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    holdings=st.lists(tron_holdings, min_size=0, max_size=6),
    facts=st.lists(
        st.tuples(st.integers(0, 50 * TRX), st.booleans(), st.integers(0, 2_000)),
        min_size=6, max_size=6,
    ),
    delegatable=st.integers(0, 100_000 * TRX),
    delegate=st.booleans(),
    threshold=st.integers(0, 10**9),
)  # fmt: skip
def test_tron_plan_properties(
    holdings: list[tuple[TokenHolding, ...]],
    facts: list[tuple[int, bool, int]],
    delegatable: int,
    delegate: bool,
    threshold: int,
) -> None:
    deposits = []
    for i, h in enumerate(holdings):
        trx, activated, bandwidth = facts[i]
        deposits.append(
            tron_deposit(
                i,
                *h,
                trx=trx if activated else 0,
                activated=activated,
                bandwidth=bandwidth if activated else 0,
            )
        )
    plan = plan_tron_sweep(
        deposits=deposits,
        fee_wallet=tron_wallet(balance=10**15, delegatable=delegatable),
        fees=TRON_FEES,
        block=BLOCK,
        policy=policy("tron", min_usdt=threshold, price=None),
        delegate=delegate,
    )
    assert_ints(plan.transfers)
    picked = [h for d in deposits for h in d.holdings if h.balance and h.balance >= threshold]
    sweeps = [t for t in plan.transfers if t.purpose == "sweep"]
    assert sum(t.amount_base_units for t in sweeps) == sum(h.balance for h in picked)
    delegated_total = sum(
        t.amount_base_units for t in plan.transfers if t.purpose == "resource_delegation"
    )
    assert delegated_total <= delegatable
    if not delegate:
        assert delegated_total == 0
    keys = {t.key for t in plan.transfers}
    assert len(keys) == len(plan.transfers)
    order = {t.key: i for i, t in enumerate(plan.transfers)}
    for t in plan.transfers:
        assert t.depends_on is None or order[t.depends_on] < order[t.key]
    for deposit in deposits:
        mine = [t for t in plan.transfers if deposit.address in t.key]
        if not mine:
            continue
        topups = [t for t in mine if t.purpose == "fee_topup"]
        delegations = [t for t in mine if t.purpose == "resource_delegation"]
        undelegations = [t for t in mine if t.purpose == "resource_undelegation"]
        assert len(delegations) == len(undelegations) <= 1
        if not deposit.activated:
            # Activation counted: a TRX transfer creates the account, paid by the fee wallet.
            assert len(topups) == 1
            assert topups[0].estimated_fee_base_units >= TRX
            assert topups[0].max_fee_base_units >= TRX + TRX // 10
        my_sweeps = [t for t in mine if t.purpose == "sweep"]
        for t in my_sweeps:
            holding = next(h for h in deposit.holdings if h.symbol == t.asset)
            assert t.fee_limit == ceil_margin(holding.estimate) * 100
        if not delegations and my_sweeps:
            need = sum(t.fee_limit or 0 for t in my_sweeps)
            have = deposit.trx_balance + sum(t.amount_base_units for t in topups)
            assert have >= need  # the burn is covered
        if delegations:
            energy = sum(
                ceil_margin(h.estimate)
                for h in deposit.holdings
                if h.balance and h.balance >= threshold
            )
            whole = delegations[0].amount_base_units // TRX
            assert whole * TRON_FEES.total_energy_limit // TRON_FEES.total_energy_weight >= energy


def test_no_float_in_the_planner() -> None:
    for module in (planner, sweep_facts):
        source = Path(module.__file__ or "").read_text()
        assert "float" not in source, module.__name__
