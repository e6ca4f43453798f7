"""Reads and writes of the ledger tables. Every write only flushes: the consumer that
called it owns the transaction."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_reconciler.ledger.models import (
    Account,
    Balance,
    Booking,
    IntentPosition,
    JournalEntry,
    ObservedTransfer,
    OutgoingBooking,
    Posting,
)


@dataclass(frozen=True)
class AccountSpec:
    code: str
    kind: str
    network: str
    asset: str
    address: str | None = None
    merchant_id: str | None = None


@dataclass(frozen=True)
class OutgoingIdentity:
    """What does not change over an outgoing transfer's life."""

    transfer_id: str
    batch_id: str
    purpose: str
    network: str
    asset: str
    source_address: str
    merchant_id: str | None  # refunds and payouts: whose balance pays


@dataclass(frozen=True)
class BalanceKey:
    """One merchant's balance in one asset on one network."""

    merchant_id: str
    network: str
    asset: str
    decimals: int


@dataclass(frozen=True)
class MerchantBalance:
    available_base_units: int
    reserved_base_units: int
    sequence: int  # of its balance.updated events


async def advance_intent(session: AsyncSession, intent_id: str, sequence: int) -> bool:
    """Record `sequence` as the newest applied snapshot of the intent; False when the
    ledger already applied this one or a newer one. The row stays locked until commit, so
    two snapshots of one intent are applied one after the other."""
    stmt = (
        insert(IntentPosition)
        .values(intent_id=intent_id, sequence=sequence)
        .on_conflict_do_update(
            index_elements=[IntentPosition.intent_id],
            set_={"sequence": sequence, "updated_at": func.now()},
            where=IntentPosition.sequence < sequence,
        )
        .returning(IntentPosition.intent_id)
    )
    return (await session.execute(stmt)).first() is not None


async def lock_bookings(
    session: AsyncSession, intent_id: str, transfer_ids: Collection[str]
) -> dict[str, Booking]:
    """The bookings of this intent and of the transfers it lists, locked for update."""
    stmt = (
        select(Booking)
        .where(or_(Booking.intent_id == intent_id, Booking.transfer_id.in_(list(transfer_ids))))
        .order_by(Booking.transfer_id)
        .with_for_update()
    )
    rows = (await session.execute(stmt)).scalars().all()
    return {b.transfer_id: b for b in rows}


async def ensure_accounts(session: AsyncSession, specs: Sequence[AccountSpec]) -> dict[str, int]:
    """Ids of the accounts with these codes, opening the missing ones."""
    for spec in sorted(specs, key=lambda s: s.code):
        await session.execute(
            insert(Account)
            .values(
                code=spec.code,
                kind=spec.kind,
                network=spec.network,
                asset=spec.asset,
                address=spec.address,
                merchant_id=spec.merchant_id,
                balance_base_units=0,
            )
            .on_conflict_do_nothing(index_elements=[Account.code])
        )
    codes = [s.code for s in specs]
    rows = await session.execute(select(Account.code, Account.id).where(Account.code.in_(codes)))
    return {code: account_id for code, account_id in rows}


async def add_entry(
    session: AsyncSession, entry: JournalEntry, postings: Sequence[tuple[int, int]]
) -> None:
    """Write an entry and its (account id, signed amount) postings."""
    session.add(entry)
    await session.flush()
    session.add_all(
        Posting(entry_id=entry.id, account_id=account_id, amount_base_units=amount)
        for account_id, amount in postings
    )
    await session.flush()


async def move_account_balances(session: AsyncSession, deltas: dict[int, int]) -> None:
    # Ascending account id: concurrent transactions take the row locks in one order.
    for account_id in sorted(deltas):
        if deltas[account_id] == 0:
            continue
        await session.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(balance_base_units=Account.balance_base_units + deltas[account_id])
        )


async def change_balance(
    session: AsyncSession, key: BalanceKey, *, available: int, reserved: int
) -> MerchantBalance:
    """Add these amounts to what the merchant has available and has reserved, and count
    one more announcement of the balance."""
    stmt = (
        insert(Balance)
        .values(
            merchant_id=key.merchant_id,
            network=key.network,
            asset=key.asset,
            decimals=key.decimals,
            available_base_units=available,
            reserved_base_units=reserved,
            sequence=1,
        )
        .on_conflict_do_update(
            index_elements=[Balance.merchant_id, Balance.network, Balance.asset],
            set_={
                "available_base_units": Balance.available_base_units + available,
                "reserved_base_units": Balance.reserved_base_units + reserved,
                "sequence": Balance.sequence + 1,
                "updated_at": func.now(),
            },
        )
        .returning(Balance.available_base_units, Balance.reserved_base_units, Balance.sequence)
    )
    now_available, now_reserved, sequence = (await session.execute(stmt)).one()
    return MerchantBalance(int(now_available), int(now_reserved), int(sequence))


async def record_observed_transfer(session: AsyncSession, values: dict[str, object]) -> bool:
    """Store a watcher's report unless a newer one for the same log is already stored."""
    row = insert(ObservedTransfer).values(**values)
    updatable = {k: row.excluded[k] for k in values if k not in ("network", "tx_hash", "log_index")}
    stmt = row.on_conflict_do_update(
        index_elements=[
            ObservedTransfer.network,
            ObservedTransfer.tx_hash,
            ObservedTransfer.log_index,
        ],
        set_={**updatable, "updated_at": func.now()},
        where=ObservedTransfer.sequence < row.excluded.sequence,
    ).returning(ObservedTransfer.tx_hash)
    return (await session.execute(stmt)).first() is not None


async def claim_outgoing(
    session: AsyncSession, identity: OutgoingIdentity, version: int
) -> OutgoingBooking | None:
    """The booking of an outgoing transfer, locked for update, when `version` is newer than
    the one it last applied (opened with nothing booked on the first update); None when
    the ledger already applied this update or a newer one. Concurrent first updates of one
    transfer meet on the primary key: the later one waits, then finds the first one's row."""
    await session.execute(
        insert(OutgoingBooking)
        .values(
            transfer_id=identity.transfer_id,
            batch_id=identity.batch_id,
            purpose=identity.purpose,
            network=identity.network,
            asset=identity.asset,
            source_address=identity.source_address,
            merchant_id=identity.merchant_id,
            state="",
            version=-1,  # older than any update: the first one always applies
            outflow_base_units=0,
            legs=[],
            entries=0,
        )
        .on_conflict_do_nothing(index_elements=[OutgoingBooking.transfer_id])
    )
    booking = await session.scalar(
        select(OutgoingBooking)
        .where(OutgoingBooking.transfer_id == identity.transfer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if booking is None or booking.version >= version:
        return None
    return booking


async def account_ids(session: AsyncSession, codes: Collection[str]) -> dict[str, int]:
    rows = await session.execute(select(Account.code, Account.id).where(Account.code.in_(codes)))
    return {code: account_id for code, account_id in rows}


async def unbooked_outflows(
    session: AsyncSession, network: str, *, block: int, grace_seconds: float
) -> tuple[dict[tuple[str, str], list[int]], dict[tuple[str, str], int]]:
    """What the chain at `block` may show that the books do not, per (asset, address):
    token amounts of outgoing transfers in broadcast or canceling (mined or not; only
    those the ledger learned of, or saw mined, less than `grace_seconds` ago), and the sum
    of those it has booked as confirmed in a block after `block` (gone from the books,
    still on chain)."""
    rows = await session.execute(
        select(
            OutgoingBooking.state,
            OutgoingBooking.asset,
            OutgoingBooking.source_address,
            OutgoingBooking.outflow_base_units,
        ).where(
            OutgoingBooking.network == network,
            OutgoingBooking.outflow_base_units > 0,
            or_(
                OutgoingBooking.state.in_(("broadcast", "canceling"))
                & (
                    OutgoingBooking.in_flight_since
                    > func.now() - func.make_interval(0, 0, 0, 0, 0, 0, grace_seconds)
                ),
                (OutgoingBooking.state == "confirmed") & (OutgoingBooking.block_number > block),
            ),
        )
    )
    in_flight: dict[tuple[str, str], list[int]] = {}
    ahead: dict[tuple[str, str], int] = {}
    for state, asset, address, amount in rows:
        if state in ("broadcast", "canceling"):
            in_flight.setdefault((asset, address), []).append(int(amount))
        else:
            ahead[(asset, address)] = ahead.get((asset, address), 0) + int(amount)
    return in_flight, ahead
