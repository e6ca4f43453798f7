"""Outbox and relay against the real PostgreSQL and RabbitMQ, and the bus migration."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import MetaData, func, select, text, update
from sqlalchemy.engine import Connection

from stablegate_common.bus import (
    OUTBOX_WRITTEN,
    Bus,
    BusError,
    InboxMessage,
    OutboxMessage,
    OutboxRelay,
    add_many_to_outbox,
    add_to_outbox,
)
from stablegate_common.bus.migrations import create_bus_tables, drop_bus_tables
from stablegate_common.config import BusSettings
from stablegate_common.db import Base, Database
from stablegate_common.events import Event
from tests.fixtures.bus import (
    BrokerProxy,
    BusFactory,
    Recorder,
    delete_bus_topology,
    eventually,
    head_event,
)


async def write_events(db: Database, events: list[Event]) -> None:
    async with db.transaction() as session:
        for event in events:
            add_to_outbox(session, event)


async def unpublished(db: Database) -> list[str]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage.event_id)
            .where(OutboxMessage.published_at.is_(None))
            .order_by(OutboxMessage.id)
        )
        return list(rows)


def relay_failures() -> float:
    return REGISTRY.get_sample_value("stablegate_outbox_relay_failures_total") or 0.0


async def test_relay_publishes_in_id_order_and_marks_rows(bus_db: Database, bus: Bus) -> None:
    received = Recorder()
    await bus.consume("heads", ["chain.head"], received, concurrency=1)
    first, second = [head_event(n) for n in range(5)], [head_event(n) for n in range(5, 12)]
    await write_events(bus_db, first)
    await write_events(bus_db, second)
    relay = OutboxRelay(bus_db, bus, batch_size=4)

    published = [await relay.relay_once() for _ in range(4)]

    assert published == [4, 4, 4, 0]
    await eventually(lambda: len(received.events) == 12)
    assert [e.id for e in received.events] == [e.id for e in first + second]
    assert received.events == first + second
    assert await unpublished(bus_db) == []


async def test_events_added_in_bulk_keep_their_order_among_single_ones(
    bus_db: Database, bus: Bus
) -> None:
    received = Recorder()
    await bus.consume("heads", ["chain.head"], received, concurrency=1)
    before, bulk, after = head_event(0), [head_event(n) for n in range(1, 300)], head_event(300)
    async with bus_db.transaction() as session:
        add_to_outbox(session, before)  # pending in the session, flushed ahead of the bulk
        await add_many_to_outbox(session, bulk)
        await add_many_to_outbox(session, [])
        add_to_outbox(session, after)

    assert await OutboxRelay(bus_db, bus).relay_once() == 301
    await eventually(lambda: len(received.events) == 301)
    assert received.events == [before, *bulk, after]


async def test_rows_of_a_rolled_back_transaction_are_never_published(
    bus_db: Database, bus: Bus
) -> None:
    received = Recorder()
    await bus.consume("heads", ["chain.head"], received)
    kept, dropped = head_event(1), head_event(2)

    async def failing_state_change() -> None:
        async with bus_db.transaction() as session:
            add_to_outbox(session, dropped)
            await session.flush()
            raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        await failing_state_change()
    await write_events(bus_db, [kept])

    assert await OutboxRelay(bus_db, bus).relay_once() == 1

    await eventually(lambda: len(received.events) == 1)
    await asyncio.sleep(0.2)
    assert [e.id for e in received.events] == [kept.id]


async def test_a_failed_publish_marks_nothing_and_a_later_relay_sends_all(
    bus_db: Database, bus: Bus, bus_factory: BusFactory, bus_settings: BusSettings
) -> None:
    received = Recorder()
    await bus.consume("heads", ["chain.head"], received, concurrency=1)
    events = [head_event(n) for n in range(10)]
    await write_events(bus_db, events)
    # A bus whose exchange vanished after it connected: the broker refuses the publish.
    broken = await bus_factory(
        settings=bus_settings.model_copy(update={"exchange": bus_settings.exchange + ".gone"})
    )
    await delete_bus_topology(
        bus_settings.url.get_secret_value(), exchanges=[broken.exchange_name], queues=[]
    )

    with pytest.raises(BusError):
        await OutboxRelay(bus_db, broken).relay_once()

    assert await unpublished(bus_db) == [e.id for e in events]
    assert await OutboxRelay(bus_db, bus).relay_once() == 10
    await eventually(lambda: len(received.events) == 10)
    assert received.events == events


async def test_relay_rides_out_a_broker_outage_without_losing_rows(
    broker_proxy: BrokerProxy, bus_db: Database, bus: Bus, bus_factory: BusFactory
) -> None:
    # The proxy is requested first so it outlives the buses that connect through it.
    received = Recorder()
    await bus.consume("heads", ["chain.head"], received)
    via_proxy = await bus_factory(
        settings=bus.settings.model_copy(update={"url": SecretStr(broker_proxy.url)}),
        service="producer",
        reconnect_interval_seconds=0.2,
        publish_timeout_seconds=1.0,
    )
    relay = OutboxRelay(bus_db, via_proxy, idle_seconds=0.05, max_backoff_seconds=0.5)
    bus_db.after_commit(relay.kick, only_if=OUTBOX_WRITTEN)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    before, during = [head_event(n) for n in range(20)], [head_event(n) for n in range(20, 60)]
    try:
        await write_events(bus_db, before)
        await eventually(lambda: len(received.events) == 20)

        failures_before = relay_failures()
        async with broker_proxy.outage():
            for event in during:
                await write_events(bus_db, [event])
            await asyncio.sleep(1.0)
            assert await unpublished(bus_db) == [e.id for e in during]
            assert not running.done()
            assert not via_proxy.is_connected()
        assert relay_failures() > failures_before

        await eventually(lambda: {e.id for e in received.events} >= {e.id for e in during})

        async def all_marked() -> bool:  # rows are marked after the confirms, a moment later
            return await unpublished(bus_db) == []

        await eventually(all_marked)
        assert via_proxy.is_connected()
        await via_proxy.ping()
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)
    assert {e.id for e in received.events} == {e.id for e in before + during}


async def test_a_commit_that_wrote_to_the_outbox_wakes_an_idle_relay(
    bus_db: Database, bus: Bus
) -> None:
    received = Recorder()
    await bus.consume("heads", ["chain.head"], received)
    relay = OutboxRelay(bus_db, bus, idle_seconds=60)
    bus_db.after_commit(relay.kick, only_if=OUTBOX_WRITTEN)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(0.2)  # the relay found nothing and sleeps for a minute
        async with bus_db.transaction() as session:  # no outbox row: no wake-up
            await session.execute(text("SELECT 1"))
        assert not relay._wake.is_set()
        await write_events(bus_db, [head_event(1)])
        await eventually(lambda: len(received.events) == 1, timeout=3)
        async with bus_db.transaction() as session:
            await add_many_to_outbox(session, [head_event(2)])
        await eventually(lambda: len(received.events) == 2, timeout=3)
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)


async def test_only_the_lock_holder_relays(bus_db: Database, bus: Bus) -> None:
    await write_events(bus_db, [head_event(1)])
    relay = OutboxRelay(bus_db, bus)
    async with bus_db.sessions() as other_replica, other_replica.begin():
        await other_replica.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
            {"k": f"outbox-relay:{bus_db.schema}"},
        )
        assert await relay.relay_once() == 0
    assert await relay.relay_once() == 1


async def test_housekeeping_reports_backlog_and_deletes_old_published_rows(
    bus_db: Database, bus: Bus
) -> None:
    old, recent, waiting = head_event(1), head_event(2), head_event(3)
    await write_events(bus_db, [old, recent])
    relay = OutboxRelay(bus_db, bus, retention=timedelta(hours=1))
    assert await relay.relay_once() == 2
    await write_events(bus_db, [waiting])
    async with bus_db.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.event_id == old.id)
            .values(published_at=func.now() - timedelta(hours=2))
        )

    await relay.housekeeping()

    async with bus_db.sessions() as session:
        left = set(await session.scalars(select(OutboxMessage.event_id)))
    assert left == {recent.id, waiting.id}
    assert REGISTRY.get_sample_value("stablegate_outbox_backlog") == 1


async def test_migration_creates_exactly_the_model_tables(bus_db: Database) -> None:
    """The migration helper and the models describe the same tables."""
    schema = bus_db.schema + "_mig"
    expected = MetaData()
    for model in (OutboxMessage, InboxMessage):
        Base.metadata.tables[model.__tablename__].to_metadata(expected)

    def migrate_and_compare(conn: Connection) -> list[object]:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(text(f'SET search_path TO "{schema}"'))
        with Operations.context(MigrationContext.configure(conn)):
            create_bus_tables()
        return list(compare_metadata(MigrationContext.configure(conn), expected))

    def drop(conn: Connection) -> list[str]:
        with Operations.context(MigrationContext.configure(conn)):
            drop_bus_tables()
        rows = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}
        )
        return [row[0] for row in rows]

    try:
        async with bus_db.engine.begin() as conn:
            assert await conn.run_sync(migrate_and_compare) == []
            assert await conn.run_sync(drop) == []
    finally:
        async with bus_db.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
