"""Applying events to the ledger: intent snapshots and outgoing-transfer updates become
journal entries and balance changes, watcher reports become observed transfers.
Functions here only flush; the consumer that calls them owns the transaction."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.bus import add_to_outbox
from stablegate_common.core.addresses import canonical_address
from stablegate_common.core.assets import AssetRegistry
from stablegate_common.core.errors import UnknownNetwork
from stablegate_common.core.ids import new_id
from stablegate_common.events import Event, make_event
from stablegate_common.events.contracts import (
    BalanceUpdated,
    ChainTransferFields,
    IntentSnapshot,
    OutgoingTransferUpdated,
)
from stablegate_reconciler.ledger import repository
from stablegate_reconciler.ledger.models import Booking, JournalEntry, OutgoingBooking
from stablegate_reconciler.ledger.rules import (
    MERCHANT_PURPOSES,
    Action,
    BookingState,
    Leg,
    OutgoingEntry,
    OutgoingFacts,
    SnapshotTransfer,
    UnbookableTransfer,
    asset_account_code,
    booking_actions,
    holding_outflow,
    legs_from_json,
    legs_to_json,
    liability_account_code,
    merchant_balance_change,
    outgoing_legs,
    rebook,
    transfer_postings,
)

log = logging.getLogger(__name__)

PRODUCER = "reconciler"

_STATUS_BY_EVENT = {
    "transfer.detected": "detected",
    "transfer.confirmed": "confirmed",
    "transfer.reverted": "reverted",
}


@dataclass(frozen=True)
class SnapshotOutcome:
    applied: bool  # False: the ledger already holds this snapshot or a newer one
    entry_ids: list[str]


async def apply_intent_snapshot(
    session: AsyncSession, event: Event, snapshot: IntentSnapshot
) -> SnapshotOutcome:
    """Bring the books in line with the gateway's newest view of one intent."""
    if not await repository.advance_intent(session, snapshot.intent_id, event.sequence):
        log.info(
            "older intent snapshot ignored",
            extra={"intent": snapshot.intent_id, "sequence": event.sequence},
        )
        return SnapshotOutcome(applied=False, entry_ids=[])
    listed = [
        SnapshotTransfer(t.transfer_id, t.amount_base_units, t.status) for t in snapshot.transfers
    ]
    bookings = await repository.lock_bookings(
        session, snapshot.intent_id, [t.transfer_id for t in listed]
    )
    states = {
        tid: BookingState(tid, b.intent_id, b.booked, b.amount_base_units)
        for tid, b in bookings.items()
    }
    actions = booking_actions(snapshot.intent_id, listed, states)
    if not actions:
        return SnapshotOutcome(applied=True, entry_ids=[])
    entry_ids = await _post_actions(session, event, snapshot, actions, bookings)
    return SnapshotOutcome(applied=True, entry_ids=entry_ids)


async def _post_actions(
    session: AsyncSession,
    event: Event,
    snapshot: IntentSnapshot,
    actions: list[Action],
    bookings: dict[str, Booking],
) -> list[str]:
    liability = liability_account_code(snapshot.merchant_id, snapshot.network, snapshot.asset)
    specs = [
        repository.AccountSpec(
            liability,
            "liability",
            snapshot.network,
            snapshot.asset,
            merchant_id=snapshot.merchant_id,
        )
    ]
    # A reversal takes funds back from the address they were booked on.
    addresses = {a.transfer_id: _booked_address(bookings, a, snapshot) for a in actions}
    for address in sorted(set(addresses.values())):
        code = asset_account_code(snapshot.network, snapshot.asset, address)
        specs.append(
            repository.AccountSpec(code, "asset", snapshot.network, snapshot.asset, address=address)
        )
    account_ids = await repository.ensure_accounts(session, specs)

    deltas: dict[int, int] = defaultdict(int)
    entry_ids = []
    for action in actions:
        asset_code = asset_account_code(
            snapshot.network, snapshot.asset, addresses[action.transfer_id]
        )
        postings = transfer_postings(action, asset_account=asset_code, liability_account=liability)
        booking = _advance_booking(session, bookings, action, snapshot)
        entry = JournalEntry(
            id=new_id("le"),
            kind="transfer_confirmed" if action.kind == "book" else "transfer_reverted",
            transfer_id=action.transfer_id,
            booking_no=booking.entries,
            intent_id=snapshot.intent_id,
            event_id=event.id,
        )
        rows = [(account_ids[p.account_code], p.amount_base_units) for p in postings]
        await repository.add_entry(session, entry, rows)
        for account_id, amount in rows:
            deltas[account_id] += amount
        entry_ids.append(entry.id)
        log.info(
            "journal entry posted",
            extra={"entry": entry.id, "transfer": action.transfer_id, "kind": entry.kind},
        )
    await repository.move_account_balances(session, dict(deltas))
    # The merchant is owed the negated liability: credits are negative postings.
    await _change_merchant_balance(
        session,
        repository.BalanceKey(
            snapshot.merchant_id, snapshot.network, snapshot.asset, snapshot.decimals
        ),
        available=-deltas[account_ids[liability]],
        reserved=0,
    )
    return entry_ids


def _booked_address(bookings: dict[str, Booking], action: Action, snapshot: IntentSnapshot) -> str:
    booking = bookings.get(action.transfer_id)
    if action.kind == "reverse" and booking is not None:
        return booking.deposit_address
    return snapshot.deposit_address


def _advance_booking(
    session: AsyncSession,
    bookings: dict[str, Booking],
    action: Action,
    snapshot: IntentSnapshot,
) -> Booking:
    booking = bookings.get(action.transfer_id)
    if booking is None:
        booking = Booking(
            transfer_id=action.transfer_id,
            intent_id=snapshot.intent_id,
            merchant_id=snapshot.merchant_id,
            network=snapshot.network,
            asset=snapshot.asset,
            deposit_address=snapshot.deposit_address,
            amount_base_units=action.amount_base_units,
            booked=False,
            entries=0,
        )
        session.add(booking)
        bookings[action.transfer_id] = booking
    booking.entries += 1
    booking.booked = action.kind == "book"
    if action.kind == "book":
        booking.amount_base_units = action.amount_base_units
        booking.deposit_address = snapshot.deposit_address
    return booking


async def _change_merchant_balance(
    session: AsyncSession, key: repository.BalanceKey, *, available: int, reserved: int
) -> None:
    """Move what the merchant has available and reserved by these amounts and announce the
    new balance (one `balance.updated`, in this transaction)."""
    if available == 0 and reserved == 0:
        return  # a booking and a reversal of equal amounts: nothing to announce
    now = await repository.change_balance(session, key, available=available, reserved=reserved)
    payload = BalanceUpdated(
        merchant_id=key.merchant_id,
        network=key.network,
        asset=key.asset,
        decimals=key.decimals,
        available_base_units=now.available_base_units,
        reserved_base_units=now.reserved_base_units,
    )
    subject = f"{key.merchant_id}:{key.network}:{key.asset}"
    add_to_outbox(
        session, make_event(payload, producer=PRODUCER, subject=subject, sequence=now.sequence)
    )


async def record_chain_transfer(
    session: AsyncSession, event: Event, report: ChainTransferFields, registry: AssetRegistry
) -> bool:
    """Keep the watcher's latest report of one Transfer log; False when it was older."""
    return await repository.record_observed_transfer(
        session,
        {
            "network": report.network,
            "tx_hash": report.tx_hash,
            "log_index": report.log_index,
            "token_contract": report.token_contract,
            "asset": _asset_symbol(registry, report.network, report.token_contract),
            "from_address": report.from_address,
            "to_address": report.to_address,
            "amount_base_units": report.amount_base_units,
            "block_number": report.block_number,
            "block_hash": report.block_hash,
            "status": _STATUS_BY_EVENT[event.type],
            "confirmations": report.confirmations,
            "sequence": event.sequence,
        },
    )


def _asset_symbol(registry: AssetRegistry, network: str, contract: str) -> str | None:
    try:
        asset = registry.network(network).asset_by_contract(contract)
    except (UnknownNetwork, ValueError):
        return None
    return None if asset is None else asset.symbol


async def apply_outgoing_transfer(
    session: AsyncSession, event: Event, update: OutgoingTransferUpdated, registry: AssetRegistry
) -> SnapshotOutcome:
    """Bring the books in line with the gateway's newest view of one outgoing transfer:
    book its movement and fee when it is confirmed, its fee alone when it failed on chain,
    a refund's or payout's reserve while it is signed and not settled, and take back what
    no longer holds (a reorg, a release). `event.sequence` is the transfer's version: an
    older or repeated update changes nothing."""
    facts = outgoing_facts(update, registry)
    # Whose balance pays: no one's for the business's own transfers, whatever they carry.
    payer = facts.merchant_id if facts.purpose in MERCHANT_PURPOSES else None
    identity = repository.OutgoingIdentity(
        facts.transfer_id,
        update.batch_id,
        facts.purpose,
        facts.network,
        facts.asset,
        facts.source_address,
        payer,
    )
    booking = await repository.claim_outgoing(session, identity, event.sequence)
    if booking is None:
        log.info(
            "older outgoing transfer update ignored",
            extra={"transfer": facts.transfer_id, "sequence": event.sequence},
        )
        return SnapshotOutcome(applied=False, entry_ids=[])
    _check_identity(booking, identity)
    target = outgoing_legs(facts)
    posted = await _post_outgoing(session, event, booking, target)
    if payer is not None:
        available, reserved = merchant_balance_change(
            list(posted.values()), payer, facts.network, facts.asset
        )
        key = repository.BalanceKey(payer, facts.network, facts.asset, update.decimals)
        await _change_merchant_balance(session, key, available=available, reserved=reserved)
    entry_ids = list(posted)
    _advance_outgoing(booking, facts, update, event.sequence)
    booking.legs = legs_to_json(target)
    await session.flush()
    return SnapshotOutcome(applied=True, entry_ids=entry_ids)


async def _post_outgoing(
    session: AsyncSession, event: Event, booking: OutgoingBooking, target: tuple[Leg, ...]
) -> dict[str, OutgoingEntry]:
    """Post what takes the transfer's booked legs to `target`; the entries by id."""
    booked = legs_from_json(booking.legs)
    to_post = rebook(target, booked)
    if not to_post:
        return {}
    accounts = {a.code: a for leg in (*booked, *target) for a, _ in leg.postings}
    specs = [
        repository.AccountSpec(
            a.code, a.kind, a.network, a.asset, address=a.address, merchant_id=a.merchant_id
        )
        for a in accounts.values()
    ]
    account_ids = await repository.ensure_accounts(session, specs)
    deltas: dict[int, int] = defaultdict(int)
    posted = {}
    for planned in to_post:
        booking.entries += 1
        entry = JournalEntry(
            id=new_id("le"),
            kind=planned.kind,
            transfer_id=booking.transfer_id,
            booking_no=booking.entries,
            intent_id=None,
            event_id=event.id,
        )
        rows = [(account_ids[p.account_code], p.amount_base_units) for p in planned.postings]
        await repository.add_entry(session, entry, rows)
        for account_id, amount in rows:
            deltas[account_id] += amount
        posted[entry.id] = planned
        log.info(
            "journal entry posted",
            extra={"entry": entry.id, "transfer": booking.transfer_id, "kind": entry.kind},
        )
    await repository.move_account_balances(session, dict(deltas))
    return posted


def outgoing_facts(update: OutgoingTransferUpdated, registry: AssetRegistry) -> OutgoingFacts:
    """The update in the ledger's terms, addresses in their canonical form (the accounts of
    deposit addresses are keyed by it)."""
    try:
        network = registry.network(update.network)
        source = canonical_address(network.family, update.source_address)
        destination = (
            None
            if update.destination_address is None
            else canonical_address(network.family, update.destination_address)
        )
    except UnknownNetwork as exc:
        raise UnbookableTransfer(exc.message, param="network") from exc
    except ValueError as exc:
        raise UnbookableTransfer(f"{update.transfer_id}: {exc}", param="address") from exc
    return OutgoingFacts(
        transfer_id=update.transfer_id,
        purpose=update.purpose,
        state=update.state,
        network=update.network,
        native_coin=network.native_symbol,
        source_address=source,
        destination_address=destination,
        asset=update.asset,
        is_token=update.token_contract is not None,
        amount_base_units=update.amount_base_units,
        fee_paid_base_units=update.fee_paid_base_units,
        merchant_id=update.merchant_id,
    )


def _check_identity(booking: OutgoingBooking, identity: repository.OutgoingIdentity) -> None:
    """A transfer's network, source, asset, purpose and paying merchant are fixed when it
    is planned: an update that says otherwise is refused rather than booked against other
    accounts."""
    for field in ("batch_id", "purpose", "network", "asset", "source_address", "merchant_id"):
        stored, now = getattr(booking, field), getattr(identity, field)
        if stored != now:
            raise UnbookableTransfer(
                f"{identity.transfer_id}: {field} was {stored!r}, the update says {now!r}",
                param=field,
            )


# Gateway states whose tokens may leave before the books say so: broadcast, and canceling
# (canceled after signing: never sent by the gateway, but the signed bytes may be mined).
OUTFLOW_IN_FLIGHT = ("broadcast", "canceling")


def _advance_outgoing(
    booking: OutgoingBooking,
    facts: OutgoingFacts,
    update: OutgoingTransferUpdated,
    version: int,
) -> None:
    outflow = holding_outflow(facts)
    if outflow == 0 or facts.state not in OUTFLOW_IN_FLIGHT:
        booking.in_flight_since = None
    elif (
        booking.in_flight_since is None
        or booking.state != facts.state
        or booking.block_number != update.block_number
    ):
        # It just went out, or was just seen mined (again): reconciliation may find the
        # tokens gone before the confirmation is booked, for a grace period from now.
        booking.in_flight_since = func.now()
    booking.outflow_base_units = outflow
    booking.state = facts.state
    booking.block_number = update.block_number
    booking.version = version
    booking.updated_at = func.now()
