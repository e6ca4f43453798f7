"""The transactional outbox: events leave a service only after the state change that
produced them has committed.

Owns the `outbox` table of the service's schema and its relay. A service writes events
with `add_to_outbox(session, event)` in the transaction that changes its state; the relay
publishes unpublished rows in id order with publisher confirms and marks them, all in one
transaction, so a broker failure rolls the marks back and the rows go out again later
(at least once; consumers dedupe by event id). One replica relays at a time, elected by a
transaction-scoped advisory lock, so rows of one schema are published in id order.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import (
    BigInteger,
    DateTime,
    Identity,
    Index,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.bus.connection import Bus, BusError, OutgoingMessage
from stablegate_common.db import Base, Database, flag_commit
from stablegate_common.events import Event

log = logging.getLogger(__name__)

BACKLOG = Gauge("stablegate_outbox_backlog", "Outbox rows not yet published")
PUBLISH_LAG = Histogram(
    "stablegate_outbox_publish_lag_seconds",
    "Time from an outbox row's insert to its confirmed publish",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RELAY_FAILURES = Counter(
    "stablegate_outbox_relay_failures_total", "Relay attempts that failed and will be retried"
)

# Transient failures the relay outlives; anything else is a bug and stops the service.
_RETRYABLE = (BusError, SQLAlchemyError, OSError, TimeoutError)
_CLEANUP_BATCH = 5000
_CLEANUP_ROUNDS = 20


# The commit flag of a transaction that queued events (`Database.after_commit(only_if=…)`).
OUTBOX_WRITTEN = "outbox_written"


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    )

    # The identity is the publish order within a schema.
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    routing_key: Mapped[str] = mapped_column(String(255))
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def add_to_outbox(session: AsyncSession, event: Event) -> None:
    """Queue `event` for publishing when (and only if) the caller's transaction commits.

    Events added in one session get increasing ids in the order they were added.
    """
    session.add(
        OutboxMessage(event_id=event.id, routing_key=event.type, body=event.model_dump(mode="json"))
    )
    flag_commit(session, OUTBOX_WRITTEN)


# The body goes as the JSON text pydantic writes (in Rust) and PostgreSQL parses it,
# rather than a dict that SQLAlchemy's JSONB type would serialize again in Python.
_INSERT_MANY = insert(cast(Table, OutboxMessage.__table__)).values(
    event_id=bindparam("event_id"),
    routing_key=bindparam("routing_key"),
    body=sql_cast(bindparam("body", type_=Text()), JSONB),
)


async def add_many_to_outbox(session: AsyncSession, events: Sequence[Event]) -> None:
    """`add_to_outbox` for many events at once, for a producer that emits them by the
    thousand (a watcher's scan): one INSERT compiled once and executed over the rows,
    without an ORM object per event. Ids increase in the order given, after any event
    already added to the session (the session flushes those first)."""
    if not events:
        return
    await session.execute(
        _INSERT_MANY,
        [{"event_id": e.id, "routing_key": e.type, "body": e.model_dump_json()} for e in events],
    )
    flag_commit(session, OUTBOX_WRITTEN)


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        batch_size: int = 500,
        idle_seconds: float = 0.5,
        retention: timedelta = timedelta(hours=1),
        housekeeping_seconds: float = 10.0,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        self.db = db
        self.bus = bus
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.retention = retention
        self.housekeeping_seconds = housekeeping_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._relay_lock = f"outbox-relay:{db.schema}"
        self._cleanup_lock = f"outbox-cleanup:{db.schema}"
        self._wake = asyncio.Event()

    def kick(self) -> None:
        """Wake the relay now (wire with `db.after_commit(relay.kick, only_if=OUTBOX_WRITTEN)`)."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish the oldest batch of unpublished rows and mark them; return how many.

        Returns 0 when another replica holds the relay lock. Raises BusError when the
        broker did not confirm every message; the transaction then rolls back and no row
        is marked.
        """
        # Not db.transaction(): its after-commit callbacks would kick this relay again.
        async with self.db.sessions() as session, session.begin():
            if not await _try_lock(session, self._relay_lock):
                return 0
            rows = (
                await session.execute(
                    select(
                        OutboxMessage.id,
                        OutboxMessage.event_id,
                        OutboxMessage.routing_key,
                        OutboxMessage.body,
                        func.extract(
                            "epoch", func.clock_timestamp() - OutboxMessage.created_at
                        ).label("age_seconds"),
                    )
                    .where(OutboxMessage.published_at.is_(None))
                    .order_by(OutboxMessage.id)
                    .limit(self.batch_size)
                    .with_for_update()
                )
            ).all()
            if not rows:
                return 0
            await self.bus.publish_messages(
                [OutgoingMessage(row.routing_key, row.event_id, _encode(row.body)) for row in rows]
            )
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([row.id for row in rows]))
                .values(published_at=func.now())
            )
        for row in rows:  # a metric in seconds, not money
            PUBLISH_LAG.observe(float(row.age_seconds))
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set: drain the backlog, then wait for a kick or
        idle_seconds. Broker and database failures are retried with backoff."""
        loop = asyncio.get_running_loop()
        failures = 0
        next_housekeeping = loop.time()
        while not stop.is_set():
            self._wake.clear()
            try:
                published = await self.relay_once()
                if loop.time() >= next_housekeeping:
                    await self.housekeeping()
                    next_housekeeping = loop.time() + self.housekeeping_seconds
            except _RETRYABLE as exc:
                failures += 1
                RELAY_FAILURES.inc()
                delay = min(self.max_backoff_seconds, 0.25 * 2**failures)
                log.warning(
                    "outbox relay failed, retrying",
                    extra={"error": repr(exc), "failures": failures, "retry_in_seconds": delay},
                )
                await _wait_any(stop, None, delay)
                continue
            failures = 0
            if published < self.batch_size:
                await _wait_any(stop, self._wake, self.idle_seconds)

    async def housekeeping(self) -> None:
        """Report the backlog and delete rows published longer ago than the retention."""
        async with self.db.sessions() as session, session.begin():
            backlog = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.published_at.is_(None))
            )
        BACKLOG.set(backlog or 0)
        for _ in range(_CLEANUP_ROUNDS):
            if await self._delete_published() < _CLEANUP_BATCH:
                break

    async def _delete_published(self) -> int:
        async with self.db.sessions() as session, session.begin():
            if not await _try_lock(session, self._cleanup_lock):
                return 0
            # Oldest first through the primary key, in bounded batches: old rows come
            # first in id order, so the scan stops early instead of reading the table.
            oldest = (
                select(OutboxMessage.id)
                .where(OutboxMessage.published_at < func.now() - self.retention)
                .order_by(OutboxMessage.id)
                .limit(_CLEANUP_BATCH)
            )
            result = await session.execute(
                delete(OutboxMessage).where(OutboxMessage.id.in_(oldest))
            )
        return int(getattr(result, "rowcount", 0) or 0)


async def _try_lock(session: AsyncSession, key: str) -> bool:
    locked = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(hashtext(:key))"), {"key": key}
    )
    return bool(locked)


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in (stop, wake) if e is not None]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
