"""The RabbitMQ side of the bus: topology, confirmed publishing and acked consuming.

Owns one durable topic exchange per deployment (`settings.exchange`, routing key = event
type), a dead-letter exchange `<exchange>.dlx` with its quorum queue `<exchange>.dlq`, and
one durable quorum queue per consumer, `<exchange>.<service>.<consumer>`. A message is
acked only after its handler returned; a handler that raises gets the message back after
a backoff, and the quorum queue's delivery limit dead-letters a message that keeps
failing. Delivery is at least once: the inbox (inbox.py) makes effects exactly once and
the outbox (outbox.py) makes publishing follow commits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from stablegate_common.config import BusSettings
from stablegate_common.events import Event
from stablegate_common.logging import event_id_var

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]

PUBLISHED = Counter(
    "stablegate_bus_published_total", "Messages confirmed by the broker, by event type", ["type"]
)
CONSUMED = Counter(
    "stablegate_bus_consumed_total",
    "Deliveries handled, by consumer and outcome (acked, retried, rejected)",
    ["consumer", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "stablegate_bus_handler_seconds",
    "Time spent in a consumer's handler, including its transaction",
    ["consumer"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class BusError(Exception):
    """The broker is unreachable or did not confirm every message of a publish."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One encoded event, ready to publish (the outbox relay builds these from rows)."""

    routing_key: str
    message_id: str
    body: bytes

    @classmethod
    def from_event(cls, event: Event) -> OutgoingMessage:
        return cls(event.type, event.id, event.model_dump_json().encode())


@dataclass
class _Consumer:
    name: str
    queue: AbstractQueue
    tag: str


class Bus:
    def __init__(
        self,
        settings: BusSettings,
        *,
        service: str,
        publish_timeout_seconds: float = 10.0,
        retry_backoff_seconds: float = 0.5,
        max_retry_backoff_seconds: float = 10.0,
        reconnect_interval_seconds: float = 2.0,
        drain_seconds: float = 20.0,
    ) -> None:
        self.settings = settings
        self.service = service
        self.exchange_name = settings.exchange
        self.dead_letter_exchange_name = f"{settings.exchange}.dlx"
        self.dead_letter_queue_name = f"{settings.exchange}.dlq"
        self.publish_timeout_seconds = publish_timeout_seconds
        self.retry_backoff_seconds = retry_backoff_seconds
        self.max_retry_backoff_seconds = max_retry_backoff_seconds
        self.reconnect_interval_seconds = reconnect_interval_seconds
        self.drain_seconds = drain_seconds
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractRobustChannel | None = None
        self._consume_channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consumers: list[_Consumer] = []
        self._in_flight: set[asyncio.Task[object]] = set()
        self._declared_queues: list[str] = []

    # -- topology ----------------------------------------------------------------------

    def queue_name(self, consumer: str) -> str:
        return f"{self.exchange_name}.{self.service}.{consumer}"

    @property
    def declared_queues(self) -> tuple[str, ...]:
        """Queues this bus declared (the dead-letter queue and every consumer's)."""
        return tuple(self._declared_queues)

    async def connect(self) -> None:
        try:
            self._connection = await aio_pika.connect_robust(
                self.settings.url.get_secret_value(),
                reconnect_interval=self.reconnect_interval_seconds,
                client_properties={"connection_name": self.service},
                timeout=self.publish_timeout_seconds,
            )
            # Separate channels: a consumer-side channel error (a bad ack) must not fail
            # publishes in flight, and prefetch applies to the consuming channel only.
            self._publish_channel = await self._connection.channel(publisher_confirms=True)
            self._consume_channel = await self._connection.channel(publisher_confirms=False)
            await self._consume_channel.set_qos(prefetch_count=self.settings.prefetch)
            await self._declare_topology(self._publish_channel)
        except CONNECTION_EXCEPTIONS as exc:
            await self._close_connection()
            raise BusError(f"cannot connect to RabbitMQ: {exc!r}") from exc
        log.info("bus connected", extra={"exchange": self.exchange_name})

    async def _declare_topology(self, channel: AbstractRobustChannel) -> None:
        self._exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        dead_letters = await channel.declare_exchange(
            self.dead_letter_exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(
            self.dead_letter_queue_name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        self._remember_queue(self.dead_letter_queue_name)
        await queue.bind(dead_letters, "#")

    def _remember_queue(self, name: str) -> None:
        if name not in self._declared_queues:
            self._declared_queues.append(name)

    def is_connected(self) -> bool:
        conn = self._connection
        if conn is None or conn.is_closed or not conn.connected.is_set():
            return False
        channel = self._publish_channel
        return channel is not None and not channel.is_closed

    async def ping(self) -> None:
        """A round trip to the broker (passive declare of the exchange), for /readyz."""
        if not self.is_connected() or self._publish_channel is None:
            raise BusError("not connected to RabbitMQ")
        try:
            channel = await self._publish_channel.get_underlay_channel()
            await channel.exchange_declare(self.exchange_name, passive=True)
        except CONNECTION_EXCEPTIONS as exc:
            raise BusError(f"RabbitMQ did not answer: {exc!r}") from exc

    # -- publishing --------------------------------------------------------------------

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish every event, all confirms in flight at once; raise BusError unless all
        were confirmed. Some may have reached the broker even then (consumers dedupe)."""
        await self.publish_messages([OutgoingMessage.from_event(e) for e in events])

    async def publish_messages(self, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        exchange = self._exchange
        if exchange is None or not self.is_connected():
            raise BusError("not connected to RabbitMQ")
        try:
            async with asyncio.timeout(self.publish_timeout_seconds):
                results = await asyncio.gather(
                    *(self._publish_one(exchange, m) for m in messages), return_exceptions=True
                )
        except TimeoutError as exc:
            raise BusError(
                f"{len(messages)} messages not confirmed within {self.publish_timeout_seconds}s"
            ) from exc
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise BusError(
                f"{len(failures)} of {len(messages)} messages not confirmed: {failures[0]!r}"
            ) from failures[0]
        for message in messages:
            PUBLISHED.labels(message.routing_key).inc()

    async def _publish_one(self, exchange: AbstractExchange, message: OutgoingMessage) -> None:
        confirmation = await exchange.publish(
            aio_pika.Message(
                message.body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message.message_id,
                type=message.routing_key,
                app_id=self.service,
            ),
            routing_key=message.routing_key,
            mandatory=False,
            timeout=self.publish_timeout_seconds,
        )
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise BusError(f"broker answered {confirmation!r} for {message.message_id}")

    # -- consuming ---------------------------------------------------------------------

    async def consume(
        self,
        consumer: str,
        routing_keys: Sequence[str],
        handler: Handler,
        *,
        concurrency: int = 8,
    ) -> None:
        """Deliver events matching `routing_keys` to `handler`, at most `concurrency` at a
        time (capped by the prefetch). Queues do not order events across producers, so
        handlers order by the event's `sequence`, not by arrival."""
        channel = self._consume_channel
        if channel is None or not self.is_connected():
            raise BusError("not connected to RabbitMQ")
        name = self.queue_name(consumer)
        try:
            queue = await channel.declare_queue(
                name,
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-dead-letter-exchange": self.dead_letter_exchange_name,
                    "x-delivery-limit": self.settings.delivery_limit,
                },
            )
            self._remember_queue(name)
            for key in routing_keys:
                await queue.bind(self.exchange_name, key)
            slots = asyncio.Semaphore(max(1, min(concurrency, self.settings.prefetch)))

            async def on_message(message: AbstractIncomingMessage) -> None:
                await self._track(self._deliver(consumer, handler, slots, message))

            tag = await queue.consume(on_message)
        except CONNECTION_EXCEPTIONS as exc:
            # A changed delivery limit on an existing queue also lands here
            # (PRECONDITION_FAILED): queue arguments cannot change in place.
            raise BusError(f"cannot consume from {name}: {exc!r}") from exc
        self._consumers.append(_Consumer(consumer, queue, tag))
        log.info("consuming", extra={"queue": name, "routing_keys": list(routing_keys)})

    async def _track(self, work: Awaitable[None]) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await work
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _deliver(
        self,
        consumer: str,
        handler: Handler,
        slots: asyncio.Semaphore,
        message: AbstractIncomingMessage,
    ) -> None:
        try:
            event = Event.model_validate_json(message.body)
        except ValidationError as exc:
            await self._reject_unparseable(consumer, message, exc)
            return
        token = event_id_var.set(event.id)
        try:
            async with slots:
                failed = await self._run_handler(consumer, handler, event)
            if not failed:
                await self._settle(message.ack(), consumer, "acked")
                return
            # Back off before handing the message back, so a dependency that is down for
            # a moment does not burn the delivery limit within milliseconds.
            await asyncio.sleep(self._retry_delay(message))
            await self._settle(message.nack(requeue=True), consumer, "retried")
        finally:
            event_id_var.reset(token)

    async def _run_handler(self, consumer: str, handler: Handler, event: Event) -> bool:
        """Run the handler; return True when it failed."""
        started = time.perf_counter()
        try:
            await handler(event)
        except Exception:
            log.exception(
                "handler failed, message will be redelivered",
                extra={"consumer": consumer, "event_type": event.type},
            )
            return True
        finally:
            HANDLER_SECONDS.labels(consumer).observe(time.perf_counter() - started)
        return False

    def _retry_delay(self, message: AbstractIncomingMessage) -> float:
        previous = message.headers.get("x-delivery-count")
        attempts = previous if isinstance(previous, int) else 0
        return float(min(self.max_retry_backoff_seconds, self.retry_backoff_seconds * 2**attempts))

    async def _reject_unparseable(
        self, consumer: str, message: AbstractIncomingMessage, exc: ValidationError
    ) -> None:
        log.error(
            "unparseable message dead-lettered",
            extra={
                "consumer": consumer,
                "message_id": message.message_id,
                "routing_key": message.routing_key,
                "error": str(exc)[:500],
            },
        )
        await self._settle(message.reject(requeue=False), consumer, "rejected")

    async def _settle(self, outcome: Awaitable[None], consumer: str, label: str) -> None:
        try:
            await outcome
        except CONNECTION_EXCEPTIONS as exc:
            # The channel went away: the broker hands the message out again, and the
            # inbox drops the duplicate if the handler already committed.
            log.warning(
                "could not settle message", extra={"consumer": consumer, "error": repr(exc)}
            )
            return
        CONSUMED.labels(consumer, label).inc()

    # -- shutdown ----------------------------------------------------------------------

    async def close(self) -> None:
        """Stop consuming, let handlers in flight finish (up to drain_seconds), close."""
        for consumer in self._consumers:
            try:
                await consumer.queue.cancel(consumer.tag)
            except CONNECTION_EXCEPTIONS as exc:
                log.warning("cancel failed", extra={"consumer": consumer.name, "error": repr(exc)})
        self._consumers.clear()
        pending = set(self._in_flight)
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.drain_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._close_connection()

    async def _close_connection(self) -> None:
        conn, self._connection = self._connection, None
        self._publish_channel = self._consume_channel = None
        self._exchange = None
        if conn is not None:
            try:
                await conn.close()
            except CONNECTION_EXCEPTIONS as exc:
                log.warning("closing the bus connection failed", extra={"error": repr(exc)})
