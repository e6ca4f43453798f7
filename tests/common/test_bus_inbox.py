"""Inbox dedupe and ack-after-commit against the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.bus import Bus, InboxMessage, idempotent, prune_inbox
from stablegate_common.db import Database
from stablegate_common.events import Event
from tests.fixtures.bus import BusFactory, eventually, head_event


async def create_effects_table(db: Database) -> None:
    # Deferred unique key: a violation surfaces at COMMIT, after the handler returned.
    async with db.transaction() as session:
        await session.execute(
            text(
                "CREATE TABLE effects (event_id text NOT NULL, "
                "CONSTRAINT uq_effects UNIQUE (event_id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )


async def effects(db: Database) -> list[str]:
    async with db.sessions() as session:
        return list(await session.scalars(text("SELECT event_id FROM effects")))


async def record_effect(session: AsyncSession, event: Event) -> None:
    await session.execute(text("INSERT INTO effects VALUES (:id)"), {"id": event.id})


def duplicates(consumer: str) -> float:
    value = REGISTRY.get_sample_value("stablegate_inbox_duplicates_total", {"consumer": consumer})
    return value or 0.0


async def test_a_duplicate_delivery_is_a_no_op(bus_db: Database, bus: Bus) -> None:
    await create_effects_table(bus_db)
    calls: list[str] = []

    async def handler(session: AsyncSession, event: Event) -> None:
        calls.append(event.id)
        await record_effect(session, event)

    await bus.consume("effects", ["chain.head"], idempotent(bus_db, "effects", handler))
    event = head_event(1)
    before = duplicates("effects")

    await bus.publish([event])
    await bus.publish([event])  # the relay may publish a row twice after a lost confirm

    await eventually(lambda: duplicates("effects") == before + 1)
    assert calls == [event.id]
    assert await effects(bus_db) == [event.id]


async def test_inbox_is_per_consumer(bus_db: Database) -> None:
    await create_effects_table(bus_db)
    event = head_event(1)
    seen: list[str] = []

    async def handler(session: AsyncSession, event: Event) -> None:
        seen.append(event.id)

    await idempotent(bus_db, "ledger", handler)(event)
    await idempotent(bus_db, "read_model", handler)(event)
    await idempotent(bus_db, "ledger", handler)(event)
    assert seen == [event.id, event.id]


async def test_ack_only_after_commit_so_a_failed_commit_is_redelivered(
    bus_db: Database, bus_factory: BusFactory
) -> None:
    await create_effects_table(bus_db)
    bus = await bus_factory(retry_backoff_seconds=0.01)
    attempts: list[str] = []

    async def handler(session: AsyncSession, event: Event) -> None:
        attempts.append(event.id)
        await record_effect(session, event)
        if len(attempts) == 1:
            # Passes inside the handler, fails at COMMIT (deferred unique key).
            await record_effect(session, event)

    await bus.consume("effects", ["chain.head"], idempotent(bus_db, "effects", handler))
    event = head_event(1)

    await bus.publish([event])

    await eventually(lambda: len(attempts) == 2)
    await asyncio.sleep(0.3)
    assert attempts == [event.id, event.id]
    assert await effects(bus_db) == [event.id]
    async with bus_db.sessions() as session:
        claims = await session.scalar(select(func.count()).select_from(InboxMessage))
    assert claims == 1


async def test_a_handler_error_rolls_back_its_writes_and_the_claim(bus_db: Database) -> None:
    await create_effects_table(bus_db)
    event = head_event(1)
    failures = iter([True, False])

    async def handler(session: AsyncSession, event: Event) -> None:
        await record_effect(session, event)
        if next(failures):
            raise RuntimeError("fails after writing")

    wrapped = idempotent(bus_db, "effects", handler)
    with pytest.raises(RuntimeError, match="fails after writing"):
        await wrapped(event)
    assert await effects(bus_db) == []
    await wrapped(event)
    assert await effects(bus_db) == [event.id]


async def test_prune_inbox_forgets_only_old_claims(bus_db: Database) -> None:
    async def nothing(session: AsyncSession, event: Event) -> None:
        return None

    old, recent = head_event(1), head_event(2)
    for event in (old, recent):
        await idempotent(bus_db, "c", nothing)(event)
    async with bus_db.transaction() as session:
        await session.execute(
            update(InboxMessage)
            .where(InboxMessage.event_id == old.id)
            .values(processed_at=func.now() - timedelta(days=8))
        )

    assert await prune_inbox(bus_db, older_than=timedelta(days=7)) == 1

    async with bus_db.sessions() as session:
        left = list(await session.scalars(select(InboxMessage.event_id)))
    assert left == [recent.id]
