"""Helpers of the reconciler suite: deliver an event as the bus would, read the books."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, func, select
from sqlalchemy.engine import Connection

from stablegate_common.bus import OutboxMessage, idempotent
from stablegate_common.core.assets import AssetRegistry
from stablegate_common.db import Database
from stablegate_common.events import Event
from stablegate_reconciler.ledger.consumers import (
    INTENTS_CONSUMER,
    OUTGOING_CONSUMER,
    TRANSFERS_CONSUMER,
    on_intent_event,
    outgoing_handler,
    transfer_handler,
)
from stablegate_reconciler.ledger.models import (
    Account,
    Balance,
    JournalEntry,
    ObservedTransfer,
    Posting,
)


async def deliver(db: Database, event: Event) -> None:
    """What the bus does with an intent event: the consumer's handler behind the inbox."""
    await idempotent(db, INTENTS_CONSUMER, on_intent_event)(event)


async def deliver_transfer(db: Database, event: Event, registry: AssetRegistry) -> None:
    await idempotent(db, TRANSFERS_CONSUMER, transfer_handler(registry))(event)


async def deliver_outgoing(db: Database, event: Event, registry: AssetRegistry) -> None:
    """What the bus does with an `outgoing.transfer.updated`: the handler behind the inbox."""
    await idempotent(db, OUTGOING_CONSUMER, outgoing_handler(registry))(event)


async def outbox(db: Database, routing_key: str) -> list[OutboxMessage]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.routing_key == routing_key)
            .order_by(OutboxMessage.id)
        )
        return list(rows)


@dataclass(frozen=True)
class EntryView:
    id: str
    kind: str
    transfer_id: str
    booking_no: int
    postings: dict[str, int]  # account code → signed amount


async def entries(db: Database) -> list[EntryView]:
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(JournalEntry, Account.code, Posting.amount_base_units)
                .join(Posting, Posting.entry_id == JournalEntry.id)
                .join(Account, Account.id == Posting.account_id)
                .order_by(JournalEntry.transfer_id, JournalEntry.booking_no, Posting.id)
            )
        ).all()
    views: dict[str, EntryView] = {}
    for entry, code, amount in rows:
        view = views.setdefault(
            entry.id, EntryView(entry.id, entry.kind, entry.transfer_id, entry.booking_no, {})
        )
        view.postings[code] = amount
    return list(views.values())


async def account_balances(db: Database) -> dict[str, int]:
    async with db.sessions() as session:
        rows = await session.execute(select(Account.code, Account.balance_base_units))
        return {code: balance for code, balance in rows}


async def posting_sums(db: Database) -> dict[str, int]:
    """Each account's balance recomputed from its postings (the running balance's check)."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(Account.code, func.coalesce(func.sum(Posting.amount_base_units), 0))
            .outerjoin(Posting, Posting.account_id == Account.id)
            .group_by(Account.code)
        )
        return {code: int(total) for code, total in rows}


async def balance(db: Database, merchant_id: str) -> Balance | None:
    async with db.sessions() as session:
        return await session.scalar(select(Balance).where(Balance.merchant_id == merchant_id))


async def observed(db: Database) -> list[ObservedTransfer]:
    async with db.sessions() as session:
        return list(await session.scalars(select(ObservedTransfer)))


def drift(metadata: MetaData) -> Callable[[Connection], Any]:
    """For `conn.run_sync`: what differs between the migrated schema and `metadata`
    (tables the metadata does not declare, such as the bus tables, are left out)."""

    def diff(conn: Connection) -> Any:
        def ours(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
            return kind != "table" or name in metadata.tables

        context = MigrationContext.configure(
            conn, opts={"include_object": ours, "compare_type": True}
        )
        return compare_metadata(context, metadata)

    return diff
