"""Live probes of the running suite for the system page: each configured service's
`/readyz` and `/metrics`, and the depth of every consumer queue on RabbitMQ.

Queue depths come from a passive declare (it reads a queue's message and consumer counts
without creating or changing it). The queue names are the dashboard's own consumers,
the dead-letter queue, and `<exchange>.<service>.<consumer>` for every consumer a
service's metrics name (`stablegate_bus_consumed_total{consumer=…}`): a consumer that
has not handled a message since its process started is not named there yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import aio_pika
import httpx
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, ChannelClosed
from prometheus_client.parser import text_string_to_metric_families

from stablegate_common.config import BusSettings

log = logging.getLogger(__name__)


@dataclass
class ServiceStatus:
    name: str
    url: str
    state: str  # ready | not_ready | down
    checks: dict[str, str] = field(default_factory=dict)
    version: str | None = None
    outbox_backlog: int | None = None
    webhook_backlog: int | None = None
    consumers: list[str] = field(default_factory=list)
    bus_service: str | None = None
    error: str | None = None


@dataclass
class QueueDepth:
    name: str
    messages: int | None
    consumers: int | None
    state: str  # ok | missing | down


@dataclass
class MetricsSummary:
    service: str | None = None
    version: str | None = None
    outbox_backlog: int | None = None
    webhook_backlog: int | None = None
    consumers: list[str] = field(default_factory=list)


def summarize_metrics(text: str) -> MetricsSummary:
    """What the system page needs from a Prometheus text exposition."""
    summary = MetricsSummary()
    consumers: set[str] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "stablegate_service_info":
                summary.service = sample.labels.get("service")
                summary.version = sample.labels.get("version")
            elif sample.name == "stablegate_outbox_backlog":
                summary.outbox_backlog = int(sample.value)
            elif sample.name == "stablegate_webhook_due_backlog":
                summary.webhook_backlog = int(sample.value)
            elif sample.name == "stablegate_bus_consumed_total" and "consumer" in sample.labels:
                consumers.add(sample.labels["consumer"])
    summary.consumers = sorted(consumers)
    return summary


class SystemProbe:
    def __init__(
        self,
        service_urls: Mapping[str, str],
        bus: BusSettings,
        *,
        own_queues: Iterable[str] = (),
        timeout_seconds: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.service_urls = dict(service_urls)
        self.bus = bus
        self.own_queues = list(own_queues)
        self.timeout_seconds = timeout_seconds
        self._transport = transport

    async def services(self) -> list[ServiceStatus]:
        async with httpx.AsyncClient(
            timeout=self.timeout_seconds, transport=self._transport
        ) as http:
            return list(
                await asyncio.gather(
                    *(self._one(http, name, url) for name, url in sorted(self.service_urls.items()))
                )
            )

    async def _one(self, http: httpx.AsyncClient, name: str, url: str) -> ServiceStatus:
        base = url.rstrip("/")
        try:
            ready = await http.get(f"{base}/readyz")
            metrics = await http.get(f"{base}/metrics")
        except httpx.HTTPError as exc:
            return ServiceStatus(name, base, "down", error=f"{type(exc).__name__}: {exc}"[:200])
        try:
            body = ready.json()
        except ValueError:
            body = {}
        checks = body.get("checks", {}) if isinstance(body, dict) else {}
        summary = summarize_metrics(metrics.text) if metrics.status_code == 200 else None
        return ServiceStatus(
            name,
            base,
            "ready" if ready.status_code == 200 else "not_ready",
            checks={str(k): str(v) for k, v in checks.items()},
            version=summary.version if summary else None,
            outbox_backlog=summary.outbox_backlog if summary else None,
            webhook_backlog=summary.webhook_backlog if summary else None,
            consumers=summary.consumers if summary else [],
            bus_service=(summary.service if summary else None) or name,
        )

    def queue_names(self, services: Iterable[ServiceStatus]) -> list[str]:
        exchange = self.bus.exchange
        names = [f"{exchange}.dlq", *self.own_queues]
        for status in services:
            names += [f"{exchange}.{status.bus_service}.{c}" for c in status.consumers]
        return sorted(dict.fromkeys(names))

    async def queues(self, names: Iterable[str]) -> list[QueueDepth]:
        wanted = list(names)
        try:
            connection = await aio_pika.connect(
                self.bus.url.get_secret_value(), timeout=self.timeout_seconds
            )
        except (*CONNECTION_EXCEPTIONS, OSError, TimeoutError) as exc:
            log.warning("queue depths unavailable", extra={"error": repr(exc)})
            return [QueueDepth(name, None, None, "down") for name in wanted]
        try:
            return [await self._depth(connection, name) for name in wanted]
        finally:
            await connection.close()

    async def _depth(self, connection: aio_pika.abc.AbstractConnection, name: str) -> QueueDepth:
        # A passive declare of a missing queue closes the channel: one channel per queue.
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(name, passive=True)
        except ChannelClosed:
            return QueueDepth(name, None, None, "missing")
        result = queue.declaration_result
        await channel.close()
        return QueueDepth(name, result.message_count or 0, result.consumer_count or 0, "ok")
