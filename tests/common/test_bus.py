"""Bus against the real RabbitMQ: topology, confirmed publishing, ack/retry/dead-letter."""

from __future__ import annotations

import asyncio
import json
import time

import aio_pika
import pytest
from pydantic import SecretStr

from stablegate_common.bus import Bus, BusError
from stablegate_common.config import BusSettings
from stablegate_common.events import Event
from tests.fixtures.bus import (
    BusFactory,
    Recorder,
    delete_bus_topology,
    eventually,
    get_messages,
    head_event,
    queue_depth,
)


def url(settings: BusSettings) -> str:
    return settings.url.get_secret_value()


async def test_round_trip_delivers_the_event_intact(bus: Bus) -> None:
    received = Recorder()
    await bus.consume("heads", ["chain.*"], received)
    sent = [head_event(1), head_event(2, "bsc")]

    await bus.publish(sent)

    await eventually(lambda: len(received.events) == 2)
    assert sorted(received.events, key=lambda e: e.sequence) == sent


async def test_only_bound_routing_keys_arrive(bus: Bus) -> None:
    received = Recorder()
    await bus.consume("transfers", ["transfer.#"], received)
    await bus.publish([head_event(1)])
    await asyncio.sleep(0.3)
    assert received.calls == 0


async def test_topology_names_follow_the_exchange(bus: Bus, bus_settings: BusSettings) -> None:
    await bus.consume("heads", ["chain.head"], Recorder())
    exchange = bus_settings.exchange
    assert bus.dead_letter_queue_name == f"{exchange}.dlq"
    assert bus.declared_queues == (f"{exchange}.dlq", f"{exchange}.test.heads")
    assert await queue_depth(url(bus_settings), f"{exchange}.test.heads") == 0


async def test_ping_and_is_connected_follow_the_connection(bus_settings: BusSettings) -> None:
    bus = Bus(bus_settings, service="test")
    assert not bus.is_connected()
    with pytest.raises(BusError):
        await bus.ping()
    with pytest.raises(BusError):
        await bus.publish([head_event(1)])
    await bus.connect()
    try:
        assert bus.is_connected()
        await bus.ping()
    finally:
        await bus.close()
        await delete_bus_topology(
            url(bus_settings),
            exchanges=[bus.exchange_name, bus.dead_letter_exchange_name],
            queues=bus.declared_queues,
        )
    assert not bus.is_connected()


async def test_connect_to_a_dead_broker_raises_bus_error(bus_settings: BusSettings) -> None:
    dead = bus_settings.model_copy(update={"url": SecretStr("amqp://guest:guest@127.0.0.1:1/")})
    bus = Bus(dead, service="test")
    with pytest.raises(BusError, match="cannot connect"):
        await bus.connect()
    assert not bus.is_connected()


async def test_a_handler_that_always_fails_ends_in_the_dead_letter_queue(
    bus_factory: BusFactory, bus_settings: BusSettings
) -> None:
    settings = bus_settings.model_copy(update={"delivery_limit": 2})
    bus = await bus_factory(settings=settings, retry_backoff_seconds=0.01)
    failing = Recorder(fail=True)
    await bus.consume("poison", ["chain.head"], failing)
    event = head_event(7)

    await bus.publish([event])

    [dead] = await get_messages(url(settings), bus.dead_letter_queue_name, 1)
    assert Event.model_validate_json(dead.body) == event
    assert dead.routing_key == "chain.head"
    # RabbitMQ 3.10 dead-letters once the delivery count exceeds the limit.
    assert failing.calls == settings.delivery_limit + 1
    await asyncio.sleep(0.3)
    assert failing.calls == settings.delivery_limit + 1


async def test_a_handler_that_fails_once_is_retried(bus_factory: BusFactory) -> None:
    bus = await bus_factory(retry_backoff_seconds=0.01)
    attempts: list[str] = []

    async def flaky(event: Event) -> None:
        attempts.append(event.id)
        if len(attempts) == 1:
            raise RuntimeError("transient")

    await bus.consume("flaky", ["chain.head"], flaky)
    event = head_event(1)
    await bus.publish([event])
    await eventually(lambda: len(attempts) == 2)
    await asyncio.sleep(0.2)
    assert attempts == [event.id, event.id]


async def test_unparseable_message_is_dead_lettered_without_calling_the_handler(
    bus: Bus, bus_settings: BusSettings
) -> None:
    received = Recorder()
    await bus.consume("heads", ["chain.head"], received)
    connection = await aio_pika.connect(url(bus_settings))
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(bus.exchange_name)
        await exchange.publish(
            aio_pika.Message(json.dumps({"not": "an event"}).encode()), routing_key="chain.head"
        )
    finally:
        await connection.close()

    [dead] = await get_messages(url(bus_settings), bus.dead_letter_queue_name, 1)
    assert json.loads(dead.body) == {"not": "an event"}
    assert received.calls == 0


async def test_handlers_run_concurrently_up_to_the_limit(bus: Bus) -> None:
    slow = Recorder(delay=0.05)
    await bus.consume("slow", ["chain.head"], slow, concurrency=3)
    await bus.publish([head_event(n) for n in range(30)])
    await eventually(lambda: len(slow.events) == 30)
    assert slow.max_active == 3


async def test_close_waits_for_the_handler_in_flight_and_acks(
    bus_factory: BusFactory, bus_settings: BusSettings
) -> None:
    bus = await bus_factory()
    slow = Recorder(delay=0.5)
    await bus.consume("slow", ["chain.head"], slow)
    await bus.publish([head_event(1)])
    await eventually(lambda: slow.active == 1)

    await bus.close()

    assert len(slow.events) == 1
    assert await queue_depth(url(bus_settings), bus.queue_name("slow")) == 0


async def test_publish_throughput_with_confirms_in_flight(bus: Bus) -> None:
    """Not an assertion on speed: prints the rate so a regression is visible."""
    await bus.consume("sink", ["chain.head"], Recorder())
    total, batch = 5000, 500
    events = [head_event(n) for n in range(total)]
    started = time.perf_counter()
    for i in range(0, total, batch):
        await bus.publish(events[i : i + batch])
    elapsed = time.perf_counter() - started
    print(f"\npublish with confirms, {batch} in flight: {total / elapsed:,.0f} msg/s")
