"""The watchers' facts about our outgoing transactions (`chain.tx.*`), applied to the
outgoing transfers through `repository.apply_event` (DESIGN.md §8, step 6), and the
time-based decisions that follow from them (stuck EVM transactions).

Every fact carries the watcher's sequence for its hash (one transfer, one hash): a fact
older than the newest applied (`chain_sequence`) is stale and dropped.

- `chain.tx.mined`: the mined facts are stored (block, gas, fee; state unchanged). A
  transfer given up too early (replaced, or failed unmined: a Tron expiry; canceled) is
  reopened (FOUND_MINED, back to broadcast; a canceled one to canceling) and a re-plan of
  a failed one's source not yet signed canceled; unless another transfer of ours at its
  EVM nonce is in a block (then the fact is from an orphaned block: dropped; that
  sibling's reorg reinstates it).
- `chain.tx.confirmed`: CONFIRMED, or REVERTED when the receipt failed (the gas it burned
  is recorded: the fee was paid all the same); a `canceling` one mined all the same is
  booked the same way. On EVM, our other transfers with the same source and nonce
  (original or fee bump) can never be mined now: SUPERSEDED. Only here, not on `mined`:
  a block at depth 1 may be reorged out and the sibling mined instead.
- `chain.tx.reorged`: the block that held it is gone: REORGED_OUT from confirmed / failed
  (back to broadcast; the broadcaster re-sends the same bytes; one canceled before we
  broadcast it, REORGED_OUT_CANCELED: back to canceling, never sent), or the mined facts are
  forgotten while still broadcast / canceling. The siblings its confirmation superseded
  are REINSTATED (back in flight, watched again).
- `chain.tx.not_found`: a Tron transaction past its expiration by the solidified head is
  dead: EXPIRED, and the re-plan hook is called (a canceling one is just canceled). An
  EVM one is left to the broadcaster (re-sent, or found to have lost its nonce) and to
  `plan_stuck_replacements`.

The handlers run inside `stablegate_common.bus.idempotent` (inbox claim + changes in one
transaction). Facts about a hash we do not know are logged and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

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
from stablegate_gateway.outgoing.models import OutgoingBatch, OutgoingTransfer
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
        kinds: dict[str, type[ChainTxFields] | type[ChainTxNotFound]] = {
            ChainTxMined.event_type: ChainTxMined,
            ChainTxConfirmed.event_type: ChainTxConfirmed,
            ChainTxReorged.event_type: ChainTxReorged,
            ChainTxNotFound.event_type: ChainTxNotFound,
        }
        payload = parse_payload(event, kinds[event.type])
        transfer = await _locked_by_hash(session, payload.network, payload.tx_hash)
        if transfer is None:
            return
        if not await _fresh(session, transfer, event):
            return
        if isinstance(payload, ChainTxNotFound):
            await apply_not_found(session, transfer, payload, replan)
        elif event.type == ChainTxReorged.event_type:
            await apply_reorged(session, transfer, payload)
        else:
            await apply_mined(
                session, transfer, payload, final=event.type != ChainTxMined.event_type
            )

    return on_chain_tx


async def _fresh(session: AsyncSession, transfer: OutgoingTransfer, event: Event) -> bool:
    """The watcher numbers its events per hash (one transfer has one hash): one older
    than the newest applied is stale (redelivered late, or taken by a slower replica)
    and dropped; a newer one is recorded as applied."""
    if event.sequence <= transfer.chain_sequence:
        log.info(
            "stale chain fact dropped",
            extra={
                "transfer_id": transfer.id,
                "event_type": event.type,
                "sequence": event.sequence,
                "applied": transfer.chain_sequence,
            },
        )
        return False
    transfer.chain_sequence = event.sequence
    await session.flush()
    return True


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
    given_up = state in (S.REPLACED, S.CANCELED) or (
        state is S.FAILED and transfer.block_number is None
    )
    if given_up and await sibling_in_block(session, transfer):
        # Per-hash sequences cannot order facts across hashes: the sibling that took the
        # nonce is in a block, so this fact is from an orphaned one. Its own reorg
        # reinstates this transfer, and the watcher reports it anew.
        log.warning(
            "a mined fact for a transfer whose nonce a sibling holds dropped",
            extra={"transfer_id": transfer.id, "tx_hash": fields.tx_hash, "state": state},
        )
        return
    if given_up:
        # Given up too early (a sibling's block was reorged out, a Tron expiry judged
        # wrongly, or a cancel settled on a weak proof): the chain says this one was
        # mined. Back in flight (a canceled one to canceling), booked from there.
        log.error(
            "a transfer given up was found mined",
            extra={"transfer_id": transfer.id, "tx_hash": fields.tx_hash, "state": state},
        )
        metrics.FOUND_MINED.labels(transfer.network, state.value).inc()
        await repository.apply_event(session, transfer, E.FOUND_MINED, failure_reason=None)
        if state is S.FAILED:
            await cancel_redos(session, transfer)
        state = S.CANCELING if state is S.CANCELED else S.BROADCAST
    if final and state in (S.BROADCAST, S.CANCELING):
        event = E.CONFIRMED if fields.success else E.REVERTED
        reason = None if fields.success else "reverted on chain (the network fee was paid)"
        if state is S.CANCELING:
            reason = f"canceled, but mined all the same; {reason or 'booked as confirmed'}"
        await repository.apply_event(
            session, transfer, event, **facts, **({"failure_reason": reason} if reason else {})
        )
        metrics.count_fees(
            transfer.network,
            fee=fields.fee_paid_base_units,
            gas=fields.gas_used,
            energy=fields.energy_used,
        )
    elif state in (S.BROADCAST, S.CONFIRMED, S.FAILED, S.CANCELING):
        await repository.apply_event(session, transfer, None, **facts)
    else:
        log.warning(
            "chain fact for a transfer not broadcast ignored",
            extra={"transfer_id": transfer.id, "state": transfer.state},
        )
        return
    if final:
        # Only a confirmed transaction has taken the nonce: a block at depth 1 may still
        # be reorged out, and the sibling mined instead (then it must still be watched).
        await supersede_siblings(session, transfer)


async def sibling_in_block(session: AsyncSession, transfer: OutgoingTransfer) -> bool:
    """Whether another transfer of ours at the same EVM (network, source, nonce) is in a
    block (mined facts stored): then this one cannot be mined too."""
    if transfer.nonce is None:
        return False
    found = await session.scalar(
        select(OutgoingTransfer.id)
        .where(OutgoingTransfer.network == transfer.network)
        .where(OutgoingTransfer.source_address == transfer.source_address)
        .where(OutgoingTransfer.nonce == transfer.nonce)
        .where(OutgoingTransfer.id != transfer.id)
        .where(OutgoingTransfer.block_number.is_not(None))
        .limit(1)
    )
    return found is not None


async def supersede_siblings(session: AsyncSession, mined: OutgoingTransfer) -> None:
    """SUPERSEDED for our other transfers holding the confirmed one's EVM nonce."""
    if mined.nonce is None:
        return
    await end_nonce(
        session,
        network=mined.network,
        source_address=mined.source_address,
        nonce=mined.nonce,
        keep=(mined.id,),
        reason=f"{mined.id} was confirmed with the same nonce",
    )


# What another transaction's confirmed nonce ends, and what it leaves alone.
_NONCE_LOSERS = (S.PLANNED, S.AWAITING_SIGNATURE, S.SIGNED, S.BROADCAST, S.CANCELING)


async def end_nonce(
    session: AsyncSession,
    *,
    network: str,
    source_address: str,
    nonce: int,
    keep: Collection[str],
    reason: str,
) -> list[str]:
    """SUPERSEDED for every transfer of ours at (source, nonce) but those in `keep` that
    is still waiting for that nonce, mined ones excepted (their own facts decide)."""
    query = (
        select(OutgoingTransfer.id)
        .where(OutgoingTransfer.network == network)
        .where(OutgoingTransfer.source_address == source_address)
        .where(OutgoingTransfer.nonce == nonce)
        .where(OutgoingTransfer.state.in_([s.value for s in _NONCE_LOSERS]))
        .where(OutgoingTransfer.block_number.is_(None))
        .order_by(OutgoingTransfer.id)
    )
    if keep:
        query = query.where(OutgoingTransfer.id.not_in(list(keep)))
    ended: list[str] = []
    for sibling_id in list(await session.scalars(query)):
        sibling = await repository.lock_transfer(session, sibling_id)
        if sibling.state in _NONCE_LOSERS and sibling.block_number is None:
            await repository.apply_event(session, sibling, E.SUPERSEDED, failure_reason=reason)
            ended.append(sibling_id)
    return ended


async def reinstate_siblings(session: AsyncSession, reorged: OutgoingTransfer) -> None:
    """The transaction that took the nonce left the chain: the siblings it superseded
    (signed bytes that may still be mined) are back in flight, and watched again."""
    if reorged.nonce is None:
        return
    siblings = await session.scalars(
        select(OutgoingTransfer.id)
        .where(OutgoingTransfer.network == reorged.network)
        .where(OutgoingTransfer.source_address == reorged.source_address)
        .where(OutgoingTransfer.nonce == reorged.nonce)
        .where(OutgoingTransfer.id != reorged.id)
        .where(OutgoingTransfer.state.in_([S.REPLACED.value, S.CANCELED.value]))
        .where(OutgoingTransfer.tx_hash.is_not(None))
        .order_by(OutgoingTransfer.id)
    )
    for sibling_id in list(siblings):
        sibling = await repository.lock_transfer(session, sibling_id)
        if sibling.state in (S.REPLACED, S.CANCELED) and sibling.tx_hash is not None:
            await repository.apply_event(
                session,
                sibling,
                E.REINSTATED,
                failure_reason=f"{reorged.id}, which had taken the nonce, was reorged out",
            )


async def cancel_redos(session: AsyncSession, found: OutgoingTransfer) -> None:
    """A transfer that failed unmined was mined after all: a re-plan of the same source
    not yet signed would move funds that are gone (or pay twice). It is canceled (or
    canceling, when its request was issued); one already signed is left to its own
    outcome (the planner read the balances then; a sweep of gone funds reverts)."""
    redos = await session.scalars(
        select(OutgoingTransfer.id)
        .where(OutgoingTransfer.network == found.network)
        .where(OutgoingTransfer.source_address == found.source_address)
        .where(OutgoingTransfer.created_at > found.created_at)
        .where(OutgoingTransfer.state.in_([S.PLANNED.value, S.AWAITING_SIGNATURE.value]))
        .order_by(OutgoingTransfer.id)
    )
    for redo_id in list(redos):
        redo = await repository.lock_transfer(session, redo_id)
        if redo.state in (S.PLANNED, S.AWAITING_SIGNATURE):
            await repository.apply_event(
                session,
                redo,
                E.CANCELED,
                failure_reason=f"{found.id}, which this redoes, was mined after all",
            )


async def apply_reorged(
    session: AsyncSession, transfer: OutgoingTransfer, fields: ChainTxFields
) -> None:
    if transfer.block_hash != fields.block_hash:
        return  # facts of a block we no longer hold it in (an older event)
    state = S(transfer.state)
    if state in (S.CONFIRMED, S.FAILED) and transfer.block_number is not None:
        if await canceled_unsent(session, transfer):
            # Mined from canceling by whoever held the bytes: watched again, never sent.
            await repository.apply_event(
                session,
                transfer,
                E.REORGED_OUT_CANCELED,
                failure_reason="canceled; its block was reorged out, watched until it "
                "cannot be mined",
            )
        else:
            await repository.apply_event(session, transfer, E.REORGED_OUT, failure_reason=None)
        await reinstate_siblings(session, transfer)
    elif state in (S.BROADCAST, S.CANCELING):
        await repository.apply_event(
            session, transfer, None, **dict.fromkeys(repository.MINED_FACTS)
        )


async def canceled_unsent(session: AsyncSession, transfer: OutgoingTransfer) -> bool:
    """Whether the transfer went `canceling` before the gateway ever broadcast it: its
    batch was canceled, or its dependency failed, or it was a redo canceled because the
    original was found mined. Entering `canceling` drops the signed bytes, so a transfer
    never sent by us without them came that way, whichever path it took."""
    if transfer.first_broadcast_at is not None:
        return False
    if transfer.signed_hex is None:
        return True
    canceled_at = await session.scalar(
        select(OutgoingBatch.canceled_at).where(OutgoingBatch.id == transfer.batch_id)
    )
    return canceled_at is not None


async def apply_not_found(
    session: AsyncSession,
    transfer: OutgoingTransfer,
    fields: ChainTxNotFound,
    replan: Replan | None,
) -> None:
    """A Tron transaction unknown to the node is dead once the *solidified* head (what the
    watcher reports for Tron: `walletsolidity/getnowblock`, the transaction absent from
    the solidified chain too) is past its expiration: a block holding it would be older
    than the expiration, so solidified already. Broadcast → EXPIRED (failed) and a
    re-plan; canceling → canceled for good."""
    state = S(transfer.state)
    if state not in (S.BROADCAST, S.CANCELING) or transfer.expiration_ms is None:
        return
    if transfer.block_number is not None:
        return  # mined facts stand until a reorg says otherwise
    head_ms = int(fields.head_timestamp.timestamp() * 1000)
    if head_ms <= transfer.expiration_ms:
        return  # may still be mined (the node may only have lost it from its pool)
    why = (
        f"expiration {transfer.expiration_ms} ms, solidified head block {fields.head_block} "
        f"at {head_ms} ms"
    )
    if state is S.CANCELING:
        await repository.apply_event(
            session, transfer, E.EXPIRED, failure_reason=f"canceled; expired unmined ({why})"
        )
        return
    await repository.apply_event(
        session, transfer, E.EXPIRED, failure_reason=f"expired unmined ({why})"
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
        merchant_id=transfer.merchant_id,
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
    sibling = aliased(OutgoingTransfer)
    nonce_mined = (
        select(sibling.id)
        .where(sibling.network == OutgoingTransfer.network)
        .where(sibling.source_address == OutgoingTransfer.source_address)
        .where(sibling.nonce == OutgoingTransfer.nonce)
        .where(sibling.block_number.is_not(None))
        .exists()
    )
    stuck = await session.scalars(
        select(OutgoingTransfer)
        .where(OutgoingTransfer.state == S.BROADCAST.value)
        .where(OutgoingTransfer.nonce.is_not(None))
        .where(OutgoingTransfer.block_number.is_(None))
        .where(OutgoingTransfer.first_broadcast_at < now - timedelta(seconds=stuck_seconds))
        .where(OutgoingTransfer.id.not_in(replaced))
        .where(~nonce_mined)  # a bump of a nonce already mined could never be mined
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
