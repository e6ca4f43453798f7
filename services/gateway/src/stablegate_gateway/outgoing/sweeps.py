"""Sweep rounds: which deposit addresses to empty, the chain read, the plan stored.

`plan_sweeps` makes one batch per network (the ops API, the CLI and the schedule call
it). Per network:
- a network with a batch not finished (any transfer not terminal) gets no new plan: one
  signing round per network at a time keeps the fee wallet's nonces gap-free;
- candidates are the deposit addresses of the network's family that were ever handed
  out, **except those with an open intent** (awaiting payment, partially paid,
  confirming). Moving funds while a payment is still arriving would race its attribution
  and the reconciliation of that address (the ledger books the payment against a balance
  the sweep is emptying); the next round sweeps the address once its intent is settled.
  Only the confirmed balance is swept (balances at the network's confirmation depth);
- the nodes are read (`chain_quotes`), the pure planner decides (`planner`), and the
  plan goes to `repository.create_batch`, which re-checks the one-round rule under a lock.
The gauge `stablegate_sweep_pending_base_units{network,asset}` is the confirmed balance
the round saw at the candidates, before the sweep.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

from bip_utils import Bip44, Bip44Coins
from prometheus_client import Gauge
from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.chains.base import ChainError
from stablegate_common.core.addresses import display_address
from stablegate_common.core.assets import Asset, Family, Network
from stablegate_common.core.errors import InvalidRequest
from stablegate_common.scheduling import Scheduler
from stablegate_gateway.addresses.models import DepositAddress
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.core.lifecycle import Status
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.outgoing import repository
from stablegate_gateway.outgoing.chain_quotes import (
    DepositSource,
    EvmQuotes,
    TronQuotes,
    Unestimated,
)
from stablegate_gateway.outgoing.models import OutgoingBatch
from stablegate_gateway.outgoing.planner import (
    SweepPlan,
    SweepPolicy,
    TokenHolding,
    plan_evm_sweep,
    plan_tron_sweep,
)
from stablegate_gateway.outgoing.sweep_facts import EvmDeposit, EvmFeeWallet

log = logging.getLogger(__name__)

SWEEP_JOB = "plan-sweeps"
ESTIMATE_FAILED = "estimate_failed"  # PlanSummary.skipped: the node refused to estimate
COIN_TYPES: dict[Family, int] = {"evm": 60, "tron": 195}
_COINS = {"evm": Bip44Coins.ETHEREUM, "tron": Bip44Coins.TRON}
HARDENED = 2**31
# Intents whose deposit address may still receive their payment: left out of sweeps.
OPEN = (Status.AWAITING_PAYMENT, Status.PARTIALLY_PAID, Status.CONFIRMING)

SWEEP_PENDING = Gauge(
    "stablegate_sweep_pending_base_units",
    "Confirmed token balance at deposit addresses awaiting a sweep, as the last plan saw it",
    ["network", "asset"],
)


class SweepsNotConfigured(InvalidRequest):
    code = "sweeps_not_configured"


@dataclass(frozen=True)
class SweepTargets:
    """Where a network's sweeps go and who pays their fees (outgoing.config)."""

    treasury: str
    fee_wallet: str
    fee_wallet_path: str
    tron_expiration_seconds: int = 3000


def targets_from_settings(ctx: GatewayContext, network: str) -> SweepTargets | None:
    """The treasury and fee wallet configured for `network`, None when it has no
    treasury (GATEWAY_TREASURY_ADDRESS_<NET> empty: that network has no sweeps)."""
    outgoing = ctx.settings.outgoing
    treasury = outgoing.treasury(network)
    fee_wallet = outgoing.fee_wallet(network)
    if treasury is None or fee_wallet is None:
        return None
    return SweepTargets(
        treasury, fee_wallet.address, fee_wallet.path, outgoing.outgoing_tron_expiration_seconds
    )


async def plan_sweeps(
    session: AsyncSession,
    ctx: GatewayContext,
    network: str | None,
    by: str,
    *,
    targets: dict[str, SweepTargets] | None = None,
) -> list[OutgoingBatch]:
    """Plan one sweep batch per network (or for `network` only); the caller commits.

    With a network named, a missing configuration or an unreachable node is an error;
    for all networks (the schedule) such a network is logged and passed over.
    """
    names = [ctx.registry.network(network).name] if network else ctx.registry.names()
    batches: list[OutgoingBatch] = []
    for name in names:
        target = (targets or {}).get(name) or targets_from_settings(ctx, name)
        url = ctx.settings.sweeps.node_url(name)
        if target is None or not url:
            if network is not None:
                missing = (
                    f"GATEWAY_TREASURY_ADDRESS_{name.upper()} / GATEWAY_FEE_WALLET_ADDRESS_"
                    f"{name.upper()}"
                    if target is None
                    else _url_setting(name)
                )
                raise SweepsNotConfigured(f"sweeps on {name} need {missing}", param="network")
            continue
        try:
            batch = await _plan_network(session, ctx, ctx.registry.network(name), by, target)
        except ChainError as exc:
            if network is not None:
                raise
            log.warning("sweep not planned: node error", extra={"network": name, "error": str(exc)})
            continue
        if batch is not None:
            batches.append(batch)
    return batches


def _url_setting(network: str) -> str:
    return "GATEWAY_TRON_API_URL" if network == "tron" else f"GATEWAY_RPC_URL_{network.upper()}"


async def _plan_network(
    session: AsyncSession, ctx: GatewayContext, net: Network, by: str, target: SweepTargets
) -> OutgoingBatch | None:
    busy = await repository.unfinished_batch(session, net.name)
    if busy is not None:
        log.info(
            "sweep not planned: a batch is unfinished",
            extra={"network": net.name, "batch_id": busy},
        )
        return None
    sources = await deposit_sources(session, ctx, net.family)
    if not sources or not net.assets:
        return None
    floors = {} if net.family == "tron" else await repository.canceling_nonces(session, net.name)
    plan, refused = await _read_and_plan(ctx, net, sources, target, floors)
    if refused:
        skipped = dict(plan.summary.skipped)
        skipped[ESTIMATE_FAILED] = len({r.address for r in refused})
        notes = [*plan.summary.notes, *(f"{r.address} {r.symbol}: {r.reason}" for r in refused)]
        plan = SweepPlan(
            plan.transfers, dataclasses.replace(plan.summary, skipped=skipped, notes=notes[:50])
        )
    if not plan.transfers:
        log.info(
            "sweep: nothing to sweep", extra={"network": net.name, "skipped": plan.summary.skipped}
        )
        return None
    batch = await repository.create_batch(
        session,
        kind="sweep",
        network=net.name,
        created_by=by,
        planned=plan.transfers,
        summary=plan.summary,
    )
    log.info(
        "sweep planned",
        extra={"network": net.name, "batch_id": batch.id, "addresses": plan.summary.addresses},
    )
    return batch


async def deposit_sources(
    session: AsyncSession, ctx: GatewayContext, family: Family
) -> list[DepositSource]:
    """Deposit addresses of `family` ever handed out, without an open intent."""
    open_intent = exists().where(
        PaymentIntent.deposit_address_id == DepositAddress.id,
        PaymentIntent.status.in_([s.value for s in OPEN]),
    )
    query = (
        select(DepositAddress.address, DepositAddress.derivation_index)
        .where(
            DepositAddress.family == family,
            or_(DepositAddress.status != "free", DepositAddress.released_at.is_not(None)),
            ~open_intent,
        )
        .order_by(DepositAddress.derivation_index)
    )
    account = account_path(ctx, family)
    rows = (await session.execute(query)).all()
    return [DepositSource(address, f"{account}/0/{index}") for address, index in rows]


def account_path(ctx: GatewayContext, family: Family) -> str:
    """`m/44'/coin'/account'` of the configured xpub (its depth-3 child number)."""
    deriver = ctx.deriver(family)
    if deriver is None:
        raise SweepsNotConfigured(f"GATEWAY_{family.upper()}_XPUB is not configured")
    account = Bip44.FromExtendedKey(deriver.xpub, _COINS[family])
    index = account.Bip32Object().Index().ToInt()
    return f"m/44'/{COIN_TYPES[family]}'/{index - HARDENED if index >= HARDENED else index}'"


def _policy(ctx: GatewayContext, net: Network, target: SweepTargets) -> SweepPolicy:
    config = ctx.settings.sweeps
    return SweepPolicy(
        network=net.name,
        native_symbol=net.native_symbol,
        native_decimals=6 if net.family == "tron" else 18,
        min_amounts={asset.symbol: config.min_base_units(asset) for asset in net.assets},
        max_fee_share=config.sweep_max_fee_share,
        gas_margin=config.sweep_gas_margin,
        native_price_usd=config.native_price(net.native_symbol),
        treasury=display_address(net.family, target.treasury),
    )


async def _read_and_plan(
    ctx: GatewayContext,
    net: Network,
    sources: list[DepositSource],
    target: SweepTargets,
    floors: dict[str, int],
) -> tuple[SweepPlan, list[Unestimated]]:
    policy = _policy(ctx, net, target)
    if net.family == "tron":
        return await _plan_tron(ctx, net, sources, target, policy)
    return await _plan_evm(ctx, net, sources, target, policy, floors)


async def _plan_tron(
    ctx: GatewayContext,
    net: Network,
    sources: list[DepositSource],
    target: SweepTargets,
    policy: SweepPolicy,
) -> tuple[SweepPlan, list[Unestimated]]:
    config = ctx.settings.sweeps
    assets = list(net.assets)
    tron = TronQuotes(
        config.tron_api_url,
        solidity_url=config.tron_solidity_url,
        timeout_seconds=config.chain_timeout_seconds,
    )
    try:
        block = await tron.block_ref(
            now_ms=int(time.time() * 1000), expiration_seconds=target.tron_expiration_seconds
        )
        fees = await tron.fees(target.fee_wallet)
        wallet = await tron.fee_wallet(target.fee_wallet, target.fee_wallet_path)
        deposits, refused = await tron.deposits(sources, assets, policy.treasury)
    finally:
        await tron.close()
    _gauge(net.name, assets, [h for d in deposits for h in d.holdings])
    plan = plan_tron_sweep(
        deposits=deposits,
        fee_wallet=wallet,
        fees=fees,
        block=block,
        policy=policy,
        delegate=config.sweep_tron_delegation == "auto",
    )
    return plan, refused


async def _plan_evm(
    ctx: GatewayContext,
    net: Network,
    sources: list[DepositSource],
    target: SweepTargets,
    policy: SweepPolicy,
    floors: dict[str, int],
) -> tuple[SweepPlan, list[Unestimated]]:
    """`floors`: per source, the lowest nonce of its canceling transfers (their signed
    bytes may be in a mempool: the pending nonce would let both be mined)."""
    config = ctx.settings.sweeps
    assets = list(net.assets)
    evm = EvmQuotes(config.node_url(net.name), timeout_seconds=config.chain_timeout_seconds)
    try:
        chain_id = await evm.chain_id()
        if net.chain_id is not None and chain_id != net.chain_id:
            raise ChainError(
                f"{_url_setting(net.name)} serves chain {chain_id}, {net.name} is {net.chain_id}"
            )
        head = await evm.head()
        confirmed = max(0, head - ctx.confirmations_for(net.name) + 1)
        # BSC is priced legacy (EIP-155), as the signer signs it; Ethereum EIP-1559.
        fees = await evm.fees(eip1559=net.name != "bsc")
        wallet = await evm.fee_wallet(target.fee_wallet, target.fee_wallet_path)
        deposits, refused = await evm.deposits(
            sources, assets, policy.treasury, confirmed_block=confirmed
        )
        wallet = dataclasses.replace(wallet, nonce=await nonce_for(evm, floors, wallet))
        deposits = [dataclasses.replace(d, nonce=await nonce_for(evm, floors, d)) for d in deposits]
    finally:
        await evm.close()
    _gauge(net.name, assets, [h for d in deposits for h in d.holdings])
    plan = plan_evm_sweep(
        deposits=deposits, fee_wallet=wallet, fees=fees, chain_id=chain_id, policy=policy
    )
    return plan, refused


async def nonce_for(
    evm: EvmQuotes, floors: dict[str, int], source: EvmFeeWallet | EvmDeposit
) -> int:
    """The nonce the plan starts `source` at: the lowest canceling one while it is still
    unused (not below the latest count, under the pending one), else the pending one."""
    floor = floors.get(source.address.lower())
    if floor is None or floor >= source.nonce:
        return source.nonce
    if await evm.latest_nonce(source.address) > floor:
        return source.nonce  # mined already (by it, or by another): not to be reused
    return floor


def _gauge(network: str, assets: list[Asset], holdings: list[TokenHolding]) -> None:
    for asset in assets:
        total = sum(h.balance for h in holdings if h.symbol == asset.symbol)
        SWEEP_PENDING.labels(network, asset.symbol).set(total)


# --- the schedule ----------------------------------------------------------------------------


async def scheduled_sweeps(ctx: GatewayContext) -> None:
    """The job body: plan every configured network; each batch waits for a signer."""
    async with ctx.db.transaction() as session:
        batches = await plan_sweeps(session, ctx, None, "scheduler")
    for batch in batches:
        log.info("scheduled sweep planned", extra={"batch_id": batch.id, "network": batch.network})


def register_sweep_job(scheduler: Scheduler, ctx: GatewayContext) -> bool:
    """Add the sweep job (once across replicas: the scheduler's advisory lock) every
    GATEWAY_SWEEP_SCHEDULE_MINUTES; with 0 there is no job. True when added."""
    seconds = ctx.settings.sweeps.schedule_seconds
    if seconds is None:
        return False

    async def body() -> None:
        await scheduled_sweeps(ctx)

    scheduler.add_interval_job(SWEEP_JOB, body, seconds)
    return True
