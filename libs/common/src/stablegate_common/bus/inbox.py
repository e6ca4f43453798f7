"""The inbox: each consumer applies an event at most once, though the bus delivers it at
least once.

Owns the `inbox` table of the service's schema, keyed by (consumer, event id). The claim
on an event id is inserted in the same transaction as the handler's writes, so both
commit or neither does; a duplicate delivery finds the claim and skips the handler. A
second delivery racing the first waits on the key until the first commits or rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import DateTime, String, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.bus.connection import Handler
from stablegate_common.db import Base, Database
from stablegate_common.events import Event

log = logging.getLogger(__name__)

DUPLICATES = Counter(
    "stablegate_inbox_duplicates_total",
    "Deliveries skipped because the consumer had already applied the event",
    ["consumer"],
)

SessionHandler = Callable[[AsyncSession, Event], Awaitable[None]]

_PRUNE_BATCH = 5000


class InboxMessage(Base):
    __tablename__ = "inbox"

    consumer: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


def idempotent(db: Database, consumer: str, handler: SessionHandler) -> Handler:
    """Wrap `handler(session, event)` for `Bus.consume`: one transaction per event, the
    inbox claim inside it, duplicates skipped. The wrapper returns only after commit, so
    the bus acks only committed work; if the commit fails the message is redelivered."""

    async def handle(event: Event) -> None:
        async with db.transaction() as session:
            claimed = await session.scalar(
                insert(InboxMessage)
                .values(consumer=consumer, event_id=event.id)
                .on_conflict_do_nothing()
                .returning(InboxMessage.event_id)
            )
            if claimed is None:
                DUPLICATES.labels(consumer).inc()
                log.info("duplicate delivery skipped", extra={"consumer": consumer})
                return
            await handler(session, event)

    return handle


async def prune_inbox(db: Database, *, older_than: timedelta) -> int:
    """Forget claims older than `older_than` (a periodic job); return how many.

    Keep it well beyond the longest redelivery window (broker outage, DLQ replay): a
    claim pruned too early lets a late duplicate through.
    """
    total = 0
    while True:
        async with db.sessions() as session, session.begin():
            oldest = (
                select(InboxMessage.consumer, InboxMessage.event_id)
                .where(InboxMessage.processed_at < func.now() - older_than)
                .limit(_PRUNE_BATCH)
            )
            result = await session.execute(
                delete(InboxMessage).where(
                    func.row(InboxMessage.consumer, InboxMessage.event_id).in_(oldest)
                )
            )
        deleted = int(getattr(result, "rowcount", 0) or 0)
        total += deleted
        if deleted < _PRUNE_BATCH:
            return total
