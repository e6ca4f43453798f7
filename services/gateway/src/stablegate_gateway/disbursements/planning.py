"""Pending refunds and payouts into signing rounds (on a schedule and on demand).

Per network, while no other round of that network is unfinished (one signing round per
network at a time: the nonces of the fee wallet and of every source stay gap-free, and a
sweep never empties an address a refund is being paid from):
- the pending ones with nothing left that could be signed or mined, and approved where
  they need it, oldest first, of one kind per round (refunds first);
- a refund is paid from **the intent's own deposit address while its confirmed balance
  still covers it** (the cheapest: one transfer, and the funds never moved), **else from
  the network's payout wallet** (GATEWAY_PAYOUT_WALLET_ADDRESS_<NET>, at its reserved
  path); a payout from one of **the merchant's own deposit addresses that still holds it
  all** (largest first), else from the payout wallet. Funds are pooled in our custody and
  the ledger keeps what each merchant is owed, so which address pays changes no balance;
  one source per transfer keeps it one transaction. One that no source covers stays
  pending and is tried again next round;
- gas and energy are planned as for sweeps (`outgoing.planner`): the fee wallet tops the
  source up, or delegates Tron energy; the gas/energy of each transfer is the node's
  estimate of exactly that transfer (its destination and amount).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.chains.base import ChainError
from stablegate_common.core.addresses import canonical_address, display_address
from stablegate_common.core.assets import Network
from stablegate_common.core.errors import InvalidRequest
from stablegate_common.scheduling import Scheduler
from stablegate_gateway.addresses.models import DepositAddress
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.disbursements.models import Disbursement
from stablegate_gateway.disbursements.service import approved
from stablegate_gateway.disbursements.states import DisbursementStatus
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.outgoing import repository
from stablegate_gateway.outgoing.chain_quotes import DepositSource, EvmQuotes, TronQuotes
from stablegate_gateway.outgoing.models import OutgoingBatch, OutgoingTransfer
from stablegate_gateway.outgoing.planner import (
    Move,
    SweepPlan,
    SweepPolicy,
    TokenHolding,
    plan_evm_moves,
    plan_tron_moves,
)
from stablegate_gateway.outgoing.sweep_facts import EvmDeposit, TronDeposit
from stablegate_gateway.outgoing.sweeps import account_path, nonce_for

log = logging.getLogger(__name__)

DISBURSEMENT_JOB = "plan-disbursements"
MAX_PER_ROUND = 200
PAYOUT_CANDIDATES = 20  # deposit addresses a payout may be paid from, largest first
DEPOSIT = "deposit_address"
PAYOUT_WALLET = "payout_wallet"
PINNED = "#pinned"  # found[...] key suffix: the source a re-plan must use


class DisbursementsNotConfigured(InvalidRequest):
    code = "disbursements_not_configured"


@dataclass
class _Source:
    kind: str  # deposit_address | payout_wallet
    source: DepositSource
    balances: dict[str, int]  # asset symbol -> confirmed base units not yet assigned


async def plan_disbursements(
    session: AsyncSession, ctx: GatewayContext, network: str | None, by: str
) -> list[OutgoingBatch]:
    """One round per network (or for `network`): the batches made; the caller commits."""
    names = [ctx.registry.network(network).name] if network else ctx.registry.names()
    batches = []
    for name in names:
        fee_wallet = ctx.settings.outgoing.fee_wallet(name)
        url = ctx.settings.sweeps.node_url(name)
        if fee_wallet is None or not url:
            if network is not None:
                raise DisbursementsNotConfigured(
                    f"refunds and payouts on {name} need GATEWAY_FEE_WALLET_ADDRESS_"
                    f"{name.upper()} and the node the planner reads",
                    param="network",
                )
            continue
        try:
            batch = await _plan_network(session, ctx, ctx.registry.network(name), by)
        except repository.SigningRoundInFlight:
            if network is not None:
                raise
            continue  # another planner took the network a moment ago: its round stands
        except ChainError as exc:
            if network is not None:
                raise
            log.warning(
                "disbursements not planned: node error", extra={"network": name, "error": str(exc)}
            )
            continue
        if batch is not None:
            batches.append(batch)
    return batches


async def _plan_network(
    session: AsyncSession, ctx: GatewayContext, net: Network, by: str
) -> OutgoingBatch | None:
    if await repository.unfinished_batch(session, net.name) is not None:
        return None
    waiting = list(
        await session.scalars(
            select(Disbursement)
            .where(
                Disbursement.network == net.name,
                Disbursement.status == DisbursementStatus.PENDING.value,
                Disbursement.transfer_id.is_(None),
            )
            .order_by(Disbursement.kind.desc(), Disbursement.id)  # refund > payout
            .limit(MAX_PER_ROUND)
            .with_for_update(skip_locked=True)
        )
    )
    waiting = [d for d in waiting if approved(d)]
    if not waiting:
        return None
    kind = waiting[0].kind
    waiting = [d for d in waiting if d.kind == kind]
    sources = await _sources(session, ctx, net, waiting)
    # Per EVM source, the lowest nonce of its canceling transfers (their signed bytes may
    # be in a mempool): reused, so at most one of the two is ever mined (as for sweeps).
    floors = {} if net.family == "tron" else await repository.canceling_nonces(session, net.name)
    plan, assigned = await _read_and_plan(ctx, net, kind, waiting, sources, floors)
    if not plan.transfers:
        log.info("disbursements: nothing could be planned", extra={"network": net.name})
        return None
    check_plan_matches(plan, waiting)
    batch = await repository.create_batch(
        session,
        kind=kind,
        network=net.name,
        created_by=by,
        planned=plan.transfers,
        summary=plan.summary,
    )
    carriers = {
        t.reference: t
        for t in await repository.batch_transfers(session, batch.id)
        if t.purpose == kind and t.reference is not None
    }
    for disbursement in waiting:
        transfer = carriers.get(disbursement.id)
        if transfer is None:
            continue
        disbursement.transfer_id = transfer.id
        disbursement.source = assigned[disbursement.id]
        disbursement.source_address = transfer.source_address
    await session.flush()
    log.info(
        "disbursements planned",
        extra={"network": net.name, "batch_id": batch.id, "kind": kind, "count": len(carriers)},
    )
    return batch


class PlanMismatch(RuntimeError):
    """A planned transfer says otherwise than the refund or payout it carries (a bug)."""


def check_plan_matches(plan: SweepPlan, waiting: Sequence[Disbursement]) -> None:
    """Every carrying transfer moves exactly what was asked: amount, token, destination,
    for the merchant that asked. Checked before anything is stored or handed out."""
    asked = {d.id: d for d in waiting}
    for t in plan.transfers:
        if t.purpose not in ("refund", "payout"):
            continue
        d = asked.get(t.reference or "")
        family = "tron" if t.network == "tron" else "evm"
        if (
            d is None
            or t.purpose != d.kind
            or t.amount_base_units != d.amount_base_units
            or t.token_contract is None
            or canonical_address(family, t.token_contract) != d.token_contract
            or t.destination_address is None
            or canonical_address(family, t.destination_address) != d.destination_address
            or t.merchant_id != d.merchant_id
        ):
            raise PlanMismatch(f"planned transfer {t.key} does not match {t.reference}")


async def _sources(
    session: AsyncSession, ctx: GatewayContext, net: Network, waiting: Sequence[Disbursement]
) -> dict[str, DepositSource]:
    """Per disbursement id, its intent's deposit address (refunds); plus the payout wallet
    under the key PAYOUT_WALLET when one is configured."""
    found: dict[str, DepositSource] = {}
    intent_ids = [d.payment_intent_id for d in waiting if d.payment_intent_id is not None]
    if intent_ids:
        account = account_path(ctx, net.family)
        rows = await session.execute(
            select(PaymentIntent.id, DepositAddress.address, DepositAddress.derivation_index)
            .join(DepositAddress, DepositAddress.id == PaymentIntent.deposit_address_id)
            .where(PaymentIntent.id.in_(intent_ids))
        )
        by_intent = {i: DepositSource(a, f"{account}/0/{n}") for i, a, n in rows.all()}
        for d in waiting:
            if d.payment_intent_id in by_intent:
                found[d.id] = by_intent[d.payment_intent_id]
    payouts = [d for d in waiting if d.kind == "payout"]
    if payouts:
        account = account_path(ctx, net.family)
        for d in payouts:
            # The merchant's deposit addresses that received the most on this network.
            held = await session.execute(
                select(DepositAddress.address, DepositAddress.derivation_index)
                .join(PaymentIntent, PaymentIntent.deposit_address_id == DepositAddress.id)
                .where(
                    PaymentIntent.merchant_id == d.merchant_id,
                    PaymentIntent.network == net.name,
                    PaymentIntent.asset == d.asset,
                    PaymentIntent.amount_confirmed_base_units > 0,
                )
                .order_by(PaymentIntent.amount_confirmed_base_units.desc())
                .limit(PAYOUT_CANDIDATES)
            )
            for rank, (address, index) in enumerate(held.all()):
                found[f"{d.id}#{rank}"] = DepositSource(address, f"{account}/0/{index}")
    wallet = ctx.settings.outgoing.payout_wallet(net.name)
    if wallet is not None:
        address = wallet.address.lower() if net.family == "evm" else wallet.address
        found[PAYOUT_WALLET] = DepositSource(address, wallet.path)
    pinned = [d for d in waiting if d.source_address is not None]
    if pinned:
        # Planned before and given up: again from the address its last transfer spent.
        spent = await session.execute(
            select(OutgoingTransfer.reference, OutgoingTransfer.source_address,
                   OutgoingTransfer.source_path)
            .where(OutgoingTransfer.reference.in_([d.id for d in pinned]))
            .order_by(OutgoingTransfer.created_at)
        )  # fmt: skip
        for reference, address, path in spent.all():
            found[f"{reference}{PINNED}"] = DepositSource(address, path)
    return found


def _assign(
    waiting: Sequence[Disbursement], found: dict[str, DepositSource], facts: dict[str, _Source]
) -> dict[str, _Source]:
    """Per disbursement id the source that pays it: its deposit address while its
    confirmed balance (less what earlier ones in this round take) covers it, else the
    payout wallet while it does. Ones no source covers are left out."""
    chosen: dict[str, _Source] = {}
    for d in waiting:
        candidates = []
        pinned = found.get(f"{d.id}{PINNED}")
        if pinned is not None:
            if pinned.address in facts:
                candidates.append(facts[pinned.address])
            _take(d, candidates, chosen)
            continue
        own = found.get(d.id)
        if own is not None and own.address in facts:
            candidates.append(facts[own.address])
        rank = 0
        while (held := found.get(f"{d.id}#{rank}")) is not None:
            if held.address in facts:
                candidates.append(facts[held.address])
            rank += 1
        if PAYOUT_WALLET in found and found[PAYOUT_WALLET].address in facts:
            candidates.append(facts[found[PAYOUT_WALLET].address])
        _take(d, candidates, chosen)
    return chosen


def _take(d: Disbursement, candidates: list[_Source], chosen: dict[str, _Source]) -> None:
    """The first candidate that still covers `d`, its balance taken down by it."""
    for source in candidates:
        if source.balances.get(d.asset, 0) >= d.amount_base_units:
            source.balances[d.asset] -= d.amount_base_units
            chosen[d.id] = source
            return
    log.info(
        "disbursement left pending: no source holds it",
        extra={"disbursement": d.id, "network": d.network, "asset": d.asset},
    )


async def _read_and_plan(
    ctx: GatewayContext,
    net: Network,
    kind: str,
    waiting: Sequence[Disbursement],
    found: dict[str, DepositSource],
    floors: dict[str, int],
) -> tuple[SweepPlan, dict[str, str]]:
    """The plan, and per planned disbursement id the kind of source it is paid from."""
    unique = list({s.address: s for s in found.values()}.values())
    if net.family == "tron":
        return await _plan_tron(ctx, net, kind, waiting, found, unique)
    return await _plan_evm(ctx, net, kind, waiting, found, unique, floors)


def _policy(ctx: GatewayContext, net: Network) -> SweepPolicy:
    config = ctx.settings.sweeps
    return SweepPolicy(
        network=net.name,
        native_symbol=net.native_symbol,
        native_decimals=6 if net.family == "tron" else 18,
        min_amounts={},
        max_fee_share=config.sweep_max_fee_share,
        gas_margin=config.sweep_gas_margin,
        native_price_usd=config.native_price(net.native_symbol),
        treasury="",  # no sweep in these plans: every move names its destination
    )


def _facts(
    deposits: Sequence[EvmDeposit] | Sequence[TronDeposit],
    found: dict[str, DepositSource],
) -> dict[str, _Source]:
    payout = found.get(PAYOUT_WALLET)
    facts: dict[str, _Source] = {}
    for deposit in deposits:
        key = deposit.address.lower() if deposit.address.startswith("0x") else deposit.address
        kind = PAYOUT_WALLET if payout is not None and payout.address == key else DEPOSIT
        source = DepositSource(key, deposit.path)
        facts[key] = _Source(kind, source, {h.symbol: h.balance for h in deposit.holdings})
    return facts


def _moves(
    net: Network,
    kind: str,
    waiting: Sequence[Disbursement],
    chosen: dict[str, _Source],
    estimates: dict[str, int | str],
) -> dict[str, list[Move]]:
    """Per source address, the moves it makes (in the order asked)."""
    moves: dict[str, list[Move]] = {}
    for d in waiting:
        source, estimate = chosen.get(d.id), estimates.get(d.id)
        if source is None or not isinstance(estimate, int):
            if isinstance(estimate, str):
                log.warning(
                    "disbursement left pending: the node refused to estimate it",
                    extra={"disbursement": d.id, "error": estimate},
                )
            continue
        # What the merchant asked for, as stored (not the registry's current view).
        holding = TokenHolding(
            d.asset,
            display_address(net.family, d.token_contract),
            d.decimals,
            source.balances.get(d.asset, 0),
            estimate,
        )
        moves.setdefault(source.source.address, []).append(
            Move(
                key=f"{kind}:{d.id}",
                purpose=kind,
                holding=holding,
                amount=d.amount_base_units,
                destination=display_address(net.family, d.destination_address),
                reference=d.id,
                merchant_id=d.merchant_id,
            )
        )
    return moves


def _to_estimate(
    waiting: Sequence[Disbursement], chosen: dict[str, _Source]
) -> tuple[list[Disbursement], list[tuple[str, str, str, int]]]:
    """The disbursements a source was found for, and the token transfer (source, contract,
    destination, amount) of each, for the node to estimate."""
    ordered = [d for d in waiting if d.id in chosen]
    transfers = [
        (chosen[d.id].source.address, d.token_contract, d.destination_address, d.amount_base_units)
        for d in ordered
    ]
    return ordered, transfers


def _by_id(ordered: Sequence[Disbursement], answers: Sequence[int | str]) -> dict[str, int | str]:
    return {d.id: answer for d, answer in zip(ordered, answers, strict=True)}


def _planned_kinds(plan: SweepPlan, chosen: dict[str, _Source]) -> dict[str, str]:
    planned = {t.reference for t in plan.transfers if t.reference is not None}
    return {d: s.kind for d, s in chosen.items() if d in planned}


async def _plan_evm(
    ctx: GatewayContext,
    net: Network,
    kind: str,
    waiting: Sequence[Disbursement],
    found: dict[str, DepositSource],
    unique: list[DepositSource],
    floors: dict[str, int],
) -> tuple[SweepPlan, dict[str, str]]:
    config = ctx.settings.sweeps
    fee_wallet = ctx.settings.outgoing.fee_wallet(net.name)
    assert fee_wallet is not None
    evm = EvmQuotes(config.node_url(net.name), timeout_seconds=config.chain_timeout_seconds)
    try:
        chain_id = await evm.chain_id()
        if net.chain_id is not None and chain_id != net.chain_id:
            raise ChainError(f"the {net.name} node serves chain {chain_id}, not {net.chain_id}")
        head = await evm.head()
        confirmed = max(0, head - ctx.confirmations_for(net.name) + 1)
        fees = await evm.fees(eip1559=net.name != "bsc")
        wallet = await evm.fee_wallet(fee_wallet.address, fee_wallet.path)
        deposits, _ = await evm.deposits(
            list(unique), list(net.assets), None, confirmed_block=confirmed
        )
        chosen = _assign(waiting, found, _facts(deposits, found))
        ordered, transfers = _to_estimate(waiting, chosen)
        answers = await evm.transfer_estimates(transfers)
        moves = _moves(net, kind, waiting, chosen, _by_id(ordered, answers))
        wallet = dataclasses.replace(wallet, nonce=await nonce_for(evm, floors, wallet))
        # Nonces only for the sources that move something.
        by_address = {
            d.address.lower(): dataclasses.replace(d, nonce=await nonce_for(evm, floors, d))
            for d in deposits
            if d.address.lower() in moves
        }
    finally:
        await evm.close()
    plan, _left = plan_evm_moves(
        kind=kind,
        sources=[(by_address[address], m) for address, m in moves.items()],
        fee_wallet=wallet,
        fees=fees,
        chain_id=chain_id,
        policy=_policy(ctx, net),
    )
    return plan, _planned_kinds(plan, chosen)


async def _plan_tron(
    ctx: GatewayContext,
    net: Network,
    kind: str,
    waiting: Sequence[Disbursement],
    found: dict[str, DepositSource],
    unique: list[DepositSource],
) -> tuple[SweepPlan, dict[str, str]]:
    config = ctx.settings.sweeps
    fee_wallet = ctx.settings.outgoing.fee_wallet(net.name)
    assert fee_wallet is not None
    tron = TronQuotes(
        config.tron_api_url,
        solidity_url=config.tron_solidity_url,
        timeout_seconds=config.chain_timeout_seconds,
    )
    try:
        block = await tron.block_ref(
            now_ms=int(time.time() * 1000),
            expiration_seconds=ctx.settings.outgoing.outgoing_tron_expiration_seconds,
        )
        fees = await tron.fees(fee_wallet.address)
        wallet = await tron.fee_wallet(fee_wallet.address, fee_wallet.path)
        deposits, _ = await tron.deposits(list(unique), list(net.assets), None)
        chosen = _assign(waiting, found, _facts(deposits, found))
        ordered, transfers = _to_estimate(waiting, chosen)
        answers = await tron.transfer_energies(transfers)
    finally:
        await tron.close()
    moves = _moves(net, kind, waiting, chosen, _by_id(ordered, answers))
    by_address = {d.address: d for d in deposits}
    plan, _left = plan_tron_moves(
        kind=kind,
        sources=[(by_address[address], m) for address, m in moves.items()],
        fee_wallet=wallet,
        fees=fees,
        block=block,
        policy=_policy(ctx, net),
        delegate=config.sweep_tron_delegation == "auto",
    )
    return plan, _planned_kinds(plan, chosen)


# --- the schedule ----------------------------------------------------------------------------


async def scheduled_disbursements(ctx: GatewayContext) -> None:
    async with ctx.db.transaction() as session:
        batches = await plan_disbursements(session, ctx, None, "scheduler")
    for batch in batches:
        log.info(
            "scheduled disbursements planned",
            extra={"batch_id": batch.id, "network": batch.network},
        )


def register_disbursement_job(scheduler: Scheduler, ctx: GatewayContext) -> bool:
    seconds = ctx.settings.disbursements.schedule_seconds
    if seconds is None:
        return False

    async def body() -> None:
        await scheduled_disbursements(ctx)

    scheduler.add_interval_job(DISBURSEMENT_JOB, body, seconds)
    return True
