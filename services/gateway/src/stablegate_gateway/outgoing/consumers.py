"""The watchers' facts about our outgoing transactions (`chain.tx.*`), applied to the
outgoing transfers through `repository.apply_event` (DESIGN.md §8, step 6), and the
time-based decisions that follow from them (stuck EVM transactions).

- `chain.tx.mined`: the mined facts are stored (block, gas, fee; state unchanged). On
  EVM, another transfer of ours with the same source and nonce (original or fee bump)
  can never be mined now: it is SUPERSEDED.
- `chain.tx.confirmed`: CONFIRMED, or REVERTED when the receipt failed (the gas it burned
  is recorded: the fee was paid all the same).
- `chain.tx.reorged`: the block that held it is gone: REORGED_OUT from confirmed / failed
  (back to broadcast; the broadcaster re-sends the same bytes), or the mined facts are
  forgotten while still broadcast.
- `chain.tx.not_found`: a Tron transaction past its expiration is dead: EXPIRED, and the
  re-plan hook is called (the planner builds a new transaction, `replaces` set). An EVM
  one is left to the broadcaster (re-sent) and to `plan_stuck_replacements`.

The handlers run inside `stablegate_common.bus.idempotent` (inbox claim + changes in one
transaction). Facts about a hash we do not know are logged and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.bus import Bus, SessionHandler, idempotent
from stablegate_common.db import Database
from stablegate_common.events import Event, parse_payload
from stablegate_common.events.contracts import (
    ChainTxConfirmed,
    ChainTxFields,
    ChainTxMined,
    ChainTxNotFound,
    ChainTxReorged,
)
from stablegate_gateway.outgoing import metrics, repository
from stablegate_gateway.outgoing.models import OutgoingTransfer
from stablegate_gateway.outgoing.plans import PlannedTransfer, PlanSummary
from stablegate_gateway.outgoing.states import OutgoingEvent, OutgoingState

log = logging.getLogger(__name__)

CONSUMER = "outgoing-transfers"
ROUTING_KEYS = (
    ChainTxMined.event_type,
    ChainTxConfirmed.event_type,
    ChainTxReorged.event_type,
    ChainTxNotFound.event_type,
)
# EIP-1559 / legacy replacement: geth wants +10 % on fee cap and tip; 12.5 % clears every
# client (research funds-out.md §2.5).
BUMP_NUMERATOR, BUMP_DENOMINATOR = 9, 8
S = OutgoingState
E = OutgoingEvent

# Called with a Tron transfer that just expired (in the consumer's transaction).
Replan = Callable[[AsyncSession, OutgoingTransfer], Awaitable[None]]


def chain_tx_handler(replan: Replan | None = None) -> SessionHandler:
    """The session handler for `idempotent(db, CONSUMER, …)`."""

    async def on_chain_tx(session: AsyncSession, event: Event) -> None:
        if event.type == ChainTxNotFound.event_type:
            await apply_not_found(session, parse_payload(event, ChainTxNotFound), replan)
            return
        kinds: dict[str, type[ChainTxFields]] = {
            ChainTxMined.event_type: ChainTxMined,
            ChainTxConfirmed.event_type: ChainTxConfirmed,
            ChainTxReorged.event_type: ChainTxReorged,
        }
        fields = parse_payload(event, kinds[event.type])
        transfer = await _locked_by_hash(session, fields.network, fields.tx_hash)
        if transfer is None:
            return
        if event.type == ChainTxReorged.event_type:
            await apply_reorged(session, transfer, fields)
        else:
            await apply_mined(
                session, transfer, fields, final=event.type != ChainTxMined.event_type
            )

    return on_chain_tx


async def consume_outgoing(bus: Bus, db: Database, replan: Replan | None = None) -> None:
    await bus.consume(CONSUMER, ROUTING_KEYS, idempotent(db, CONSUMER, chain_tx_handler(replan)))


def mined_facts(fields: ChainTxFields) -> dict[str, object]:
    return {
        "block_number": fields.block_number,
        "block_hash": fields.block_hash,
        "mined_at": fields.block_timestamp,
        "receipt_status": "success" if fields.success else "reverted",
        "gas_used": fields.gas_used,
        "effective_gas_price": fields.effective_gas_price,
        "energy_used": fields.energy_used,
        "bandwidth_used": fields.bandwidth_used,
        "fee_paid_base_units": fields.fee_paid_base_units,
    }


async def apply_mined(
    session: AsyncSession, transfer: OutgoingTransfer, fields: ChainTxFields, *, final: bool
) -> None:
    facts = mined_facts(fields)
    state = S(transfer.state)
    if state is S.REPLACED:
        # We took the other one for the winner; the chain says this one was mined.
        log.error(
            "a transfer marked replaced was mined",
            extra={"transfer_id": transfer.id, "tx_hash": fields.tx_hash},
        )
        return
    if final and state is S.BROADCAST:
        event = E.CONFIRMED if fields.success else E.REVERTED
        reason = None if fields.success else "reverted on chain (the network fee was paid)"
        await repository.apply_event(
            session, transfer, event, **facts, **({"failure_reason": reason} if reason else {})
        )
        metrics.count_fees(
            transfer.network,
            fee=fields.fee_paid_base_units,
            gas=fields.gas_used,
            energy=fields.energy_used,
        )
    elif state in (S.BROADCAST, S.CONFIRMED, S.FAILED):
        await repository.apply_event(session, transfer, None, **facts)
    else:
        log.warning(
            "chain fact for a transfer not broadcast ignored",
            extra={"transfer_id": transfer.id, "state": transfer.state},
        )
        return
    await supersede_siblings(session, transfer)


async def supersede_siblings(session: AsyncSession, mined: OutgoingTransfer) -> None:
    """SUPERSEDED for our other transfers holding the mined one's EVM nonce."""
    if mined.nonce is None:
        return
    siblings = await session.scalars(
        select(OutgoingTransfer.id)
        .where(OutgoingTransfer.network == mined.network)
        .where(OutgoingTransfer.source_address == mined.source_address)
        .where(OutgoingTransfer.nonce == mined.nonce)
        .where(OutgoingTransfer.id != mined.id)
        .where(OutgoingTransfer.state.in_([S.SIGNED.value, S.BROADCAST.value]))
    )
    for sibling_id in list(siblings):
        sibling = await repository.lock_transfer(session, sibling_id)
        if sibling.state in (S.SIGNED, S.BROADCAST):
            await repository.apply_event(
                session,
                sibling,
                E.SUPERSEDED,
                failure_reason=f"{mined.id} was mined with the same nonce",
            )


async def apply_reorged(
    session: AsyncSession, transfer: OutgoingTransfer, fields: ChainTxFields
) -> None:
    if transfer.block_hash != fields.block_hash:
        return  # facts of a block we no longer hold it in (an older event)
    state = S(transfer.state)
    if state in (S.CONFIRMED, S.FAILED):
        await repository.apply_event(session, transfer, E.REORGED_OUT, failure_reason=None)
    elif state is S.BROADCAST:
        await repository.apply_event(
            session, transfer, None, **dict.fromkeys(repository.MINED_FACTS)
        )


async def apply_not_found(
    session: AsyncSession, fields: ChainTxNotFound, replan: Replan | None
) -> None:
    transfer = await _locked_by_hash(session, fields.network, fields.tx_hash)
    if transfer is None or transfer.state != S.BROADCAST or transfer.expiration_ms is None:
        return
    head_ms = int(fields.head_timestamp.timestamp()) * 1000
    if head_ms <= transfer.expiration_ms:
        return  # may still be mined (the node may only have lost it from its pool)
    await repository.apply_event(
        session,
        transfer,
        E.EXPIRED,
        failure_reason=f"expired unmined (expiration {transfer.expiration_ms} ms, head block "
        f"{fields.head_block} at {head_ms} ms)",
    )
    if replan is not None:
        await replan(session, transfer)
    else:
        log.warning("an expired Tron transfer awaits a re-plan", extra={"transfer_id": transfer.id})


# -- stuck EVM transactions ---------------------------------------------------------------


def bumped(value: int | None) -> int | None:
    """+12.5 %, rounded up, and at least +1 (replacement needs strictly higher)."""
    if value is None:
        return None
    return max(value + 1, -(-value * BUMP_NUMERATOR // BUMP_DENOMINATOR))


def replacement_plan(transfer: OutgoingTransfer) -> PlannedTransfer:
    """The same transaction (nonce, destination, amount, gas limit) with +12.5 % fees."""
    gas = transfer.gas_limit or 0
    price = bumped(transfer.max_fee_per_gas) or bumped(transfer.gas_price) or 0
    return PlannedTransfer(
        key=f"replacement:{transfer.id}",
        purpose=transfer.purpose,
        network=transfer.network,
        source_address=transfer.source_address,
        source_path=transfer.source_path,
        destination_address=transfer.destination_address,
        destination_path=transfer.destination_path,
        asset=transfer.asset,
        token_contract=transfer.token_contract,
        decimals=transfer.decimals,
        amount_base_units=transfer.amount_base_units,
        max_fee_base_units=gas * price,
        estimated_fee_base_units=gas * price,
        reference=transfer.reference,
        replaces=transfer.id,
        chain_id=transfer.chain_id,
        nonce=transfer.nonce,
        gas_limit=transfer.gas_limit,
        max_fee_per_gas=bumped(transfer.max_fee_per_gas),
        max_priority_fee_per_gas=bumped(transfer.max_priority_fee_per_gas),
        gas_price=bumped(transfer.gas_price),
    )


async def plan_stuck_replacements(
    session: AsyncSession,
    *,
    stuck_seconds: float,
    native_symbols: dict[str, str],
    now: datetime | None = None,
) -> list[str]:
    """A `replacement` batch per EVM transfer broadcast longer than `stuck_seconds` ago
    and not mined, unless one was planned already (for it, or for a replacement of it
    that is itself not stuck yet). Returns the new batch ids."""
    now = now or datetime.now(UTC)
    replaced = select(OutgoingTransfer.replaces).where(OutgoingTransfer.replaces.is_not(None))
    stuck = await session.scalars(
        select(OutgoingTransfer)
        .where(OutgoingTransfer.state == S.BROADCAST.value)
        .where(OutgoingTransfer.nonce.is_not(None))
        .where(OutgoingTransfer.block_number.is_(None))
        .where(OutgoingTransfer.first_broadcast_at < now - timedelta(seconds=stuck_seconds))
        .where(OutgoingTransfer.id.not_in(replaced))
        .order_by(OutgoingTransfer.first_broadcast_at)
    )
    batches: list[str] = []
    for transfer in list(stuck):
        plan = replacement_plan(transfer)
        summary = PlanSummary(
            network=transfer.network,
            kind="replacement",
            addresses=1,
            totals={transfer.asset: transfer.amount_base_units},
            network_cost_base_units=plan.estimated_fee_base_units,
            network_cost_max_base_units=plan.max_fee_base_units,
            native_symbol=native_symbols.get(transfer.network, ""),
            native_price_usd=None,
            network_cost_usd=None,
            notes=[f"fee bump of {transfer.id} (nonce {transfer.nonce}), stuck in broadcast"],
        )
        batch = await repository.create_batch(
            session,
            kind="replacement",
            network=transfer.network,
            created_by="broadcaster",
            planned=[plan],
            summary=summary,
        )
        batches.append(batch.id)
        log.warning(
            "stuck transfer: replacement planned",
            extra={"transfer_id": transfer.id, "batch_id": batch.id, "nonce": transfer.nonce},
        )
    return batches


async def _locked_by_hash(
    session: AsyncSession, network: str, tx_hash: str
) -> OutgoingTransfer | None:
    found = await session.scalar(
        select(OutgoingTransfer.id)
        .where(OutgoingTransfer.network == network)
        .where(OutgoingTransfer.tx_hash.in_(_hash_forms(tx_hash)))
    )
    if found is None:
        log.info("chain fact about an unknown hash", extra={"network": network, "tx_hash": tx_hash})
        return None
    return await repository.lock_transfer(session, found)


def _hash_forms(tx_hash: str) -> list[str]:
    bare = tx_hash.lower().removeprefix("0x")
    return [bare, "0x" + bare, tx_hash]
