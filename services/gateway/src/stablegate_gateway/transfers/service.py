"""What a chain fact means for a payment intent: the gateway's side of `transfer.*`.

A watcher reports a transfer's state (detected, confirmed, reverted) with a per-transfer
sequence. Each event is read as the transfer's state at that sequence, not as a delta:
the row moves to the reported state and the intent gets the difference (seen, confirmed,
taken back), so events that arrive out of order or twice cannot count a transfer twice.
Three guards make one credit per transfer: the consumer's inbox (same event id), the
sequence (older news is ignored) and the unique (network, tx_hash, log_index).

Attribution is by destination address and time, never by sender: the transfer belongs
to the intent that holds its `to_address` (allocated or cooling), was created before
the transfer's block, give or take a small skew, and got the address before the
gateway first recorded the transfer (a recycled address never inherits an earlier
payment). It counts when it is the intent's token
on the intent's network; another registered token (`wrong_asset`) or the same EVM
address on the other EVM network (`wrong_network`) is attached to the intent and flags
it for a person, without counting. Nothing matches → the transfer is kept as
unsolicited (`intent_id` NULL), never dropped, and announced (`transfer.unsolicited`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from prometheus_client import Counter
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.addresses import canonical_address
from stablegate_common.core.assets import Network
from stablegate_common.core.ids import new_id
from stablegate_common.events.contracts import ChainTransferFields
from stablegate_common.logging import intent_id_var
from stablegate_gateway.addresses.models import DepositAddress
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.core.lifecycle import (
    IntentEvent,
    MisdirectedTransfer,
    MisdirectedTransferReverted,
    Misdirection,
    TransferConfirmed,
    TransferReverted,
    TransferSeen,
)
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.intents.transitions import advance_intent, lock_intent
from stablegate_gateway.transfers.kinds import kind_of, misdirection
from stablegate_gateway.transfers.models import Transfer
from stablegate_gateway.transfers.unsolicited import announce_unsolicited

log = logging.getLogger(__name__)

ChainState = Literal["detected", "confirmed", "reverted"]
RowStatus = Literal["pending", "confirmed", "reverted"]

ROW_STATUS: dict[ChainState, RowStatus] = {
    "detected": "pending",
    "confirmed": "confirmed",
    "reverted": "reverted",
}

TRANSFER_EVENTS = Counter(
    "stablegate_gateway_transfer_events_total",
    "transfer.* events applied by the gateway, by kind and outcome",
    ["kind", "outcome"],
)
UNSOLICITED = Counter(
    "stablegate_gateway_unsolicited_transfers_total",
    "Transfers that count towards no payment intent (kept, never dropped), by network and "
    "reason: no_intent, unregistered_token, wrong_asset, wrong_network",
    ["network", "reason"],
)


class Outcome(StrEnum):
    COUNTED = "counted"  # the intent's amounts changed
    UPDATED = "updated"  # the row changed (depth, block), the intent did not
    STALE = "stale"  # an event older than what the row holds
    UNSOLICITED = "unsolicited"  # no intent holds the address, or not a registered token
    MISDIRECTED = "misdirected"  # held by an intent, but another token or network


def intent_events(
    before: RowStatus | None, after: RowStatus, amount: int, *, mined_in_time: bool
) -> list[IntentEvent]:
    """What moving a counted transfer from `before` (None: never counted) to `after`
    means for its intent; `mined_in_time`: its block is older than the intent's expiry."""
    counted = None if before == "reverted" else before
    match (counted, after):
        case (None, "pending"):
            return [TransferSeen(amount, mined_in_time)]
        case (None, "confirmed"):
            return [TransferConfirmed(amount, was_seen=False, mined_in_time=mined_in_time)]
        case ("pending", "confirmed"):
            return [TransferConfirmed(amount, mined_in_time=mined_in_time)]
        case ("pending", "reverted"):
            return [TransferReverted(amount, was_confirmed=False)]
        case ("confirmed", "reverted"):
            return [TransferReverted(amount, was_confirmed=True)]
        case ("confirmed", "pending"):
            # Reorged out and mined again in a block that is not final yet.
            return [
                TransferReverted(amount, was_confirmed=True),
                TransferSeen(amount, mined_in_time),
            ]
    return []


@dataclass(frozen=True)
class ChainTransfer:
    """A `transfer.*` event, in canonical address forms."""

    state: ChainState
    sequence: int
    network: Network
    fields: ChainTransferFields
    token_contract: str
    to_address: str
    from_address: str

    @classmethod
    def parse(
        cls, ctx: GatewayContext, state: ChainState, fields: ChainTransferFields, sequence: int
    ) -> ChainTransfer:
        network = ctx.registry.network(fields.network)
        return cls(
            state=state,
            sequence=sequence,
            network=network,
            fields=fields,
            token_contract=canonical_address(network.family, fields.token_contract),
            to_address=canonical_address(network.family, fields.to_address),
            from_address=_canonical_or_raw(network, fields.from_address),
        )


async def apply_chain_transfer(
    session: AsyncSession, ctx: GatewayContext, fact: ChainTransfer, *, now: datetime | None = None
) -> Outcome:
    """Apply one transfer event in the caller's transaction (flush only)."""
    now = now or datetime.now(UTC)
    row = await _lock_transfer(session, ctx, fact)
    if row is not None and fact.sequence <= row.chain_sequence:
        return _done(fact, Outcome.STALE)
    _check_depth(ctx, fact)
    is_new = row is None
    registered = fact.network.asset_by_contract(fact.token_contract) is not None
    intent_id = row.intent_id if row is not None else None
    counted_before = _row_status(row.status) if row is not None else None
    first_recorded = row.detected_at if row is not None else now
    if row is not None and _came_back_changed(row, fact):
        # A re-executed transaction emitted another log at this (tx, index): it is a new
        # transfer to whoever holds its recipient now, not the old one's.
        intent_id, first_recorded = None, now
    if intent_id is None and registered:
        # Unsolicited so far: the intent may be visible now (a late-committed creation).
        intent_id = await attribute(session, ctx, fact, first_recorded=first_recorded)
        counted_before = None
    intent = await lock_intent(session, intent_id) if intent_id is not None else None
    row = _upsert_row(session, row, fact, intent_id, now)
    await session.flush()
    if intent is None:
        _log_not_counted(fact, "no_intent" if registered else "unregistered_token", is_new)
        if registered:
            await announce_unsolicited(session, ctx, row, fact.network, now=now)
        return _done(fact, Outcome.UNSOLICITED)
    return await _apply_to_intent(session, ctx, fact, intent, counted_before, is_new, now)


async def _lock_transfer(
    session: AsyncSession, ctx: GatewayContext, fact: ChainTransfer
) -> Transfer | None:
    """Every event of one transfer is applied one at a time, whichever consumer holds it;
    the lock is taken before the intent's row lock, always in that order."""
    fields = fact.fields
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
        {"key": f"{ctx.db.schema}:transfer:{fields.network}:{fields.tx_hash}:{fields.log_index}"},
    )
    return await session.scalar(
        select(Transfer).where(
            Transfer.network == fields.network,
            Transfer.tx_hash == fields.tx_hash,
            Transfer.log_index == fields.log_index,
        )
    )


async def _apply_to_intent(
    session: AsyncSession,
    ctx: GatewayContext,
    fact: ChainTransfer,
    intent: PaymentIntent,
    counted_before: RowStatus | None,
    is_new: bool,
    now: datetime,
) -> Outcome:
    kind = kind_of(intent, network=fact.network.name, token_contract=fact.token_contract)
    after = ROW_STATUS[fact.state]
    misdirected = misdirection(kind)
    if misdirected is None:
        events = intent_events(
            counted_before,
            after,
            fact.fields.amount_base_units,
            mined_in_time=mined_before_expiry(ctx, fact, intent),
        )
    else:
        # Another token or network: shown with the intent and flagged, never counted.
        _log_not_counted(fact, kind, is_new)
        events = misdirected_events(misdirected, counted_before, after)
    token = intent_id_var.set(intent.id)
    try:
        changed = await advance_intent(session, ctx, intent, events, now=now)
    finally:
        intent_id_var.reset(token)
    if misdirected is not None:
        return _done(fact, Outcome.MISDIRECTED)
    return _done(fact, Outcome.COUNTED if changed else Outcome.UPDATED)


def mined_before_expiry(ctx: GatewayContext, fact: ChainTransfer, intent: PaymentIntent) -> bool:
    """Chain time, not processing time, says whether a payment was in time: its block is
    older than the expiry, with the same allowance for block clocks as attribution."""
    skew = timedelta(seconds=ctx.settings.gateway.attribution_skew_seconds)
    return fact.fields.block_timestamp < intent.expires_at + skew


def _check_depth(ctx: GatewayContext, fact: ChainTransfer) -> None:
    """Intents show the gateway's configured depth; a watcher configured otherwise makes
    that promise wrong, which only the operator can fix (both read GATEWAY_/WATCHER_
    CONFIRMATIONS or the registry)."""
    shown = ctx.confirmations_for(fact.network.name)
    if fact.state == "confirmed" and fact.fields.confirmations_required != shown:
        log.warning(
            "the watcher confirms at another depth than intents show",
            extra={
                "network": fact.network.name,
                "watcher_confirmations": fact.fields.confirmations_required,
                "gateway_confirmations": shown,
            },
        )


def misdirected_events(
    kind: Misdirection, before: RowStatus | None, after: RowStatus
) -> list[IntentEvent]:
    """A misdirected transfer flags its intent while it is on chain (seen or final) and
    stops flagging it when a reorg takes it away."""
    was_live = before in ("pending", "confirmed")
    is_live = after in ("pending", "confirmed")
    if is_live and not was_live:
        return [MisdirectedTransfer(kind)]
    if was_live and not is_live:
        return [MisdirectedTransferReverted(kind)]
    return []


async def attribute(
    session: AsyncSession, ctx: GatewayContext, fact: ChainTransfer, *, first_recorded: datetime
) -> str | None:
    """The intent that held the transfer's destination address when it was sent.

    The holder must have had the address before the gateway first recorded the transfer
    (`first_recorded`): an unsolicited transfer to an address back in the pool stays
    unsolicited when a new intent gets the address, even within the skew of its block.
    What this still re-attributes is a transfer recorded while its intent's creation was
    not yet committed (the intent got the address first). By chain time, the holder got
    the address no later than the transfer's block, give or take the skew.

    An EVM address serves Ethereum and BSC alike, so the holder may be an intent on the
    other EVM network: the transfer is then attributed to it as a wrong-network payment
    (the pool lends an address to one intent on one network at a time, so there is at
    most one holder).
    """
    skew = timedelta(seconds=ctx.settings.gateway.attribution_skew_seconds)
    same_family = [n.name for n in ctx.registry if n.family == fact.network.family]
    held_since = func.coalesce(DepositAddress.allocated_at, PaymentIntent.created_at)
    return await session.scalar(
        select(PaymentIntent.id)
        .join(DepositAddress, DepositAddress.id == PaymentIntent.deposit_address_id)
        .where(
            PaymentIntent.network.in_(same_family),
            PaymentIntent.deposit_address == fact.to_address,
            PaymentIntent.created_at <= fact.fields.block_timestamp + skew,
            held_since <= fact.fields.block_timestamp + skew,
            held_since <= first_recorded,
            DepositAddress.intent_id == PaymentIntent.id,
            DepositAddress.status.in_(("allocated", "cooling")),
        )
        .order_by(PaymentIntent.created_at.desc())
        .limit(1)
    )


def _came_back_changed(row: Transfer, fact: ChainTransfer) -> bool:
    return (
        row.status == "reverted"
        and fact.state != "reverted"
        and (row.to_address, row.token_contract) != (fact.to_address, fact.token_contract)
    )


def _upsert_row(
    session: AsyncSession,
    row: Transfer | None,
    fact: ChainTransfer,
    intent_id: str | None,
    now: datetime,
) -> Transfer:
    fields = fact.fields
    status = ROW_STATUS[fact.state]
    if row is None:
        row = Transfer(
            id=new_id("tr"),
            network=fields.network,
            tx_hash=fields.tx_hash,
            log_index=fields.log_index,
            token_contract=fact.token_contract,
            from_address=fact.from_address,
            to_address=fact.to_address,
            amount_base_units=fields.amount_base_units,
            detected_at=now,
        )
        session.add(row)
    # The newest event's facts: a transfer reverted and mined again may carry new ones.
    row.token_contract = fact.token_contract
    row.from_address = fact.from_address
    row.to_address = fact.to_address
    row.amount_base_units = fields.amount_base_units
    row.intent_id = intent_id
    row.status = status
    row.chain_sequence = fact.sequence
    row.confirmations = fields.confirmations
    row.block_number = fields.block_number
    row.block_hash = fields.block_hash
    row.block_timestamp = fields.block_timestamp
    if status == "confirmed":
        row.confirmed_at = row.confirmed_at or now
    else:
        row.confirmed_at = None
    return row


def _row_status(value: str) -> RowStatus:
    for status in ROW_STATUS.values():
        if status == value:
            return status
    raise ValueError(f"unknown transfer status {value!r}")


def _canonical_or_raw(network: Network, address: str) -> str:
    # The sender is shown, never matched on: an odd form is kept as reported.
    try:
        return canonical_address(network.family, address)
    except ValueError:
        return address


def _log_not_counted(fact: ChainTransfer, reason: str, first_heard: bool) -> None:
    if not first_heard:
        return  # counted once per transfer, not once per event
    UNSOLICITED.labels(fact.network.name, reason).inc()
    log.warning(
        "transfer not counted towards a payment intent",
        extra={
            "reason": reason,
            "network": fact.network.name,
            "tx_hash": fact.fields.tx_hash,
            "log_index": fact.fields.log_index,
            "to_address": fact.to_address,
            "amount_base_units": str(fact.fields.amount_base_units),
        },
    )


def _done(fact: ChainTransfer, outcome: Outcome) -> Outcome:
    TRANSFER_EVENTS.labels(fact.state, outcome.value).inc()
    return outcome
