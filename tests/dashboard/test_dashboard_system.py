"""The system page's probes: a service's /readyz and /metrics read into health, outbox
backlog and consumer names; queue depths by passive declare on the real RabbitMQ; and
watcher states from the chain-head read model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import aio_pika
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Info, generate_latest
from pydantic import SecretStr

from stablegate_common.config import BusSettings
from stablegate_common.db import Database
from stablegate_common.events import make_event
from stablegate_common.events.contracts import ChainHead
from stablegate_dashboard.system.probes import SystemProbe, summarize_metrics
from stablegate_dashboard.web.context import DashboardContext
from tests.dashboard.support import deliver
from tests.fixtures.bus import delete_bus_topology
from tests.reconciler.processes import free_port

SignedIn = Callable[[str], Awaitable[httpx.AsyncClient]]


def test_metrics_are_summarized_for_the_page() -> None:
    registry = CollectorRegistry()
    Info("stablegate_service", "service", registry=registry).info(
        {"service": "gateway", "version": "1.2.3"}
    )
    Gauge("stablegate_outbox_backlog", "rows", registry=registry).set(7)
    Gauge("stablegate_webhook_due_backlog", "due", registry=registry).set(3)
    consumed = Counter(
        "stablegate_bus_consumed_total", "handled", ["consumer", "outcome"], registry=registry
    )
    consumed.labels("transfers", "acked").inc()
    consumed.labels("balances", "retried").inc()

    summary = summarize_metrics(generate_latest(registry).decode())

    assert (summary.service, summary.version) == ("gateway", "1.2.3")
    assert (summary.outbox_backlog, summary.webhook_backlog) == (7, 3)
    assert summary.consumers == ["balances", "transfers"]


async def test_a_service_is_probed_over_http_and_a_dead_one_is_down(
    dashboard_app: FastAPI, bus_settings: BusSettings
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    probe = SystemProbe(
        {"self": "http://dashboard"},
        bus_settings,
        transport=httpx.ASGITransport(app=dashboard_app),
    )
    [alive] = await probe.services()
    assert (alive.state, alive.checks) == ("ready", {"database": "ok"})
    [down] = await SystemProbe({"gone": dead}, bus_settings).services()
    assert down.state == "down"
    assert down.error


@pytest.fixture
async def queue_with_messages(bus_settings: BusSettings) -> AsyncIterator[str]:
    name = f"{bus_settings.exchange}.gateway.transfers"
    connection = await aio_pika.connect(bus_settings.url.get_secret_value())
    channel = await connection.channel()
    await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
    for n in range(3):
        await channel.default_exchange.publish(aio_pika.Message(b"%d" % n), routing_key=name)
    await connection.close()
    yield name
    await delete_bus_topology(bus_settings.url.get_secret_value(), exchanges=[], queues=[name])


async def test_queue_depths_come_from_a_passive_declare(
    bus_settings: BusSettings, queue_with_messages: str
) -> None:
    probe = SystemProbe({}, bus_settings)
    missing = f"{bus_settings.exchange}.nobody.nothing"

    depths = {q.name: q for q in await probe.queues([queue_with_messages, missing])}

    assert (depths[queue_with_messages].state, depths[queue_with_messages].messages) == ("ok", 3)
    assert depths[queue_with_messages].consumers == 0
    assert depths[missing].state == "missing"
    down = SystemProbe(
        {}, bus_settings.model_copy(update={"url": SecretStr("amqp://guest:guest@127.0.0.1:1/")})
    )
    assert [q.state for q in await down.queues(["x"])] == ["down"]


async def test_the_system_page_tells_ok_lagging_and_stale_watchers(
    dashboard_db: Database, dashboard_ctx: DashboardContext, signed_in: SignedIn
) -> None:
    now = datetime.now(UTC)
    for network, head, scanned, age in (("ethereum", 500, 499, 1), ("bsc", 900, 700, 1)):
        event = make_event(
            ChainHead(network=network, head_block=head, scanned_block=scanned, head_timestamp=now),
            producer="watcher",
            subject=network,
            sequence=head,
            occurred_at=now - timedelta(seconds=age),
        )
        await deliver(dashboard_db, event)
    stale = make_event(
        ChainHead(network="tron", head_block=10, scanned_block=10, head_timestamp=now),
        producer="watcher",
        subject="tron",
        sequence=10,
        occurred_at=now - timedelta(hours=1),
    )
    await deliver(dashboard_db, stale)

    html = (await (await signed_in("viewer")).get("/system")).text
    rows = {
        network: html.split(f"<td>{network}</td>")[1].split("</tr>")[0]
        for network in ("Ethereum (ERC-20)", "BNB Smart Chain (BEP-20)", "Tron (TRC-20)")
        if f"<td>{network}</td>" in html
    }
    assert "status-success" in rows["Ethereum (ERC-20)"]
    assert "Lagging" in rows["BNB Smart Chain (BEP-20)"]
    assert "200 blocks" in rows["BNB Smart Chain (BEP-20)"]
    assert "Stale" in rows["Tron (TRC-20)"]
    exchange = dashboard_ctx.settings.bus.exchange
    assert dashboard_ctx.probe.own_queues[0].removeprefix(f"{exchange}.") in html
