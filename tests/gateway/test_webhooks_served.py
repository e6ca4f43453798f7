"""Webhooks as an operator runs the gateway: a real `stablegate-gateway serve` process
whose merchant receiver fails for a while; the gateway is stopped (SIGTERM) with
deliveries still failing, started again, and the receiver, now healthy, gets every event
exactly as signed (each signature verified over the raw body) and as `GET /v1/events`
shows it. Retries are fast here (fractions of a second); their three-day schedule is
tested in test_webhooks_signing.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from devnet.devnet import free_port
from stablegate_common.config import BusSettings, DatabaseSettings
from stablegate_common.db import Database
from stablegate_common.hd import DEVNET_EVM_XPUB
from stablegate_gateway.balances.consumers import CONSUMER as BALANCES
from stablegate_gateway.networks.consumers import CONSUMER as NETWORK_HEADS
from stablegate_gateway.transfers.consumers import CONSUMER as TRANSFERS
from stablegate_gateway.webhooks.models import WebhookDelivery
from stablegate_gateway.webhooks.signing import verify_signature
from tests.conftest import DATABASE_URL
from tests.fixtures.bus import delete_bus_topology, eventually
from tests.fixtures.payments import Receiver
from tests.gateway.test_api_served import EXECUTABLE, run, wait_ready

pytestmark = pytest.mark.slow

INTENTS = 3


@pytest.fixture
def gateway_env(schema_name: str, bus_settings: BusSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "DATABASE_"))}
    env.update(
        DATABASE_URL=DATABASE_URL,
        DATABASE_SCHEMA=schema_name,
        RABBITMQ_URL=bus_settings.url.get_secret_value(),
        RABBITMQ_EXCHANGE=bus_settings.exchange,
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(free_port()),
        STABLEGATE_ENVIRONMENT="test",
        GATEWAY_EVM_XPUB=DEVNET_EVM_XPUB,
        GATEWAY_ADDRESS_POOL_MIN_FREE="10",
        GATEWAY_ADDRESS_POOL_BATCH="10",
        GATEWAY_WEBHOOK_ALLOW_PRIVATE_URLS="true",
        GATEWAY_WEBHOOK_BACKOFF_BASE_SECONDS="0.2",
        GATEWAY_WEBHOOK_BACKOFF_FACTOR="2",
        GATEWAY_WEBHOOK_BACKOFF_CAP_SECONDS="1",
        GATEWAY_WEBHOOK_MAX_ATTEMPTS="1000",
        GATEWAY_WEBHOOK_POLL_SECONDS="0.1",
        LOG_JSON="true",
    )
    return env


@pytest.fixture
def topology(bus_settings: BusSettings) -> Iterator[None]:
    yield
    exchange = bus_settings.exchange
    queues = [f"{exchange}.gateway.{c}" for c in (NETWORK_HEADS, BALANCES, TRANSFERS)]
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(
            delete_bus_topology(
                bus_settings.url.get_secret_value(),
                exchanges=[exchange, f"{exchange}.dlx"],
                queues=[*queues, f"{exchange}.dlq"],
            )
        )
    finally:
        loop.close()


class Gateway:
    """`stablegate-gateway serve`, started and stopped like a supervisor would."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{env['HTTP_PORT']}"

    async def start(self) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [EXECUTABLE, "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            await wait_ready(client, self.process, self.log)

    async def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(self.process.wait, 60)
        assert code == 0, self.log.read_text()[-5000:]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
async def gateway(
    gateway_env: dict[str, str], topology: None, tmp_path: Path
) -> AsyncIterator[Gateway]:
    assert run(gateway_env, "migrate").returncode == 0
    served = Gateway(gateway_env, tmp_path / "gateway.log")
    try:
        yield served
    finally:
        served.kill()


async def delivery_states(env: dict[str, str]) -> list[tuple[str, int]]:
    settings = DatabaseSettings(url=env["DATABASE_URL"], DATABASE_SCHEMA=env["DATABASE_SCHEMA"])
    db = Database(settings)
    try:
        async with db.sessions() as session:
            rows = await session.execute(
                select(WebhookDelivery.status, func.count(), func.min(WebhookDelivery.attempts))
                .group_by(WebhookDelivery.status)
                .order_by(WebhookDelivery.status)
            )
            return [(row[0], int(row[2])) for row in rows]
    finally:
        await db.dispose()


async def test_a_failing_receiver_gets_every_event_after_a_gateway_restart(
    gateway: Gateway, gateway_env: dict[str, str], webhook_receiver: Receiver
) -> None:
    merchant = json.loads(run(gateway_env, "create-merchant", "--name", "Restart Shop").stdout)
    headers = {"Authorization": f"Bearer {merchant['secret_key']}"}
    webhook_receiver.statuses = [503] * 100_000  # down until told otherwise
    await gateway.start()
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=30) as api:
        endpoint = (
            await api.post("/v1/webhook_endpoints", json={"url": webhook_receiver.url})
        ).json()
        body = {"amount": "12.50", "currency": "USDT", "network": "ethereum"}
        intents = [
            (await api.post("/v1/payment_intents", json=body)).json() for _ in range(INTENTS)
        ]
        await api.post(f"/v1/payment_intents/{intents[0]['id']}/cancel")
        # Every event is tried and retried while the receiver fails.
        await eventually(
            lambda: (
                len(set(webhook_receiver.event_ids())) == INTENTS + 1
                and len(webhook_receiver.requests) >= 3 * (INTENTS + 1)
            ),
            timeout=30,
        )

    await gateway.stop()
    # The retries are in the database, not in the stopped process's memory.
    [(status, fewest_attempts)] = await delivery_states(gateway_env)
    assert (status, fewest_attempts >= 1) == ("pending", True)
    seen_while_down = len(webhook_receiver.requests)
    await asyncio.sleep(1.0)
    assert len(webhook_receiver.requests) == seen_while_down  # nobody is sending now
    webhook_receiver.statuses.clear()  # the receiver is fixed: 200 from now on

    await gateway.start()

    async def all_delivered() -> bool:
        return [s for s, _ in await delivery_states(gateway_env)] == ["succeeded"]

    await eventually(all_delivered, timeout=60)
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=30) as api:
        events = (await api.get("/v1/events?limit=100")).json()["data"]
        stored = {e["id"]: e for e in events}
    await gateway.stop()

    assert len(stored) == INTENTS + 1
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for request in webhook_receiver.requests:
        # Exactly as signed: the signature verifies over the raw bytes received.
        verify_signature(endpoint["secret"], request.headers["Stablegate-Signature"], request.body)
        bodies[request.headers["Stablegate-Event-Id"]].add(request.body)
    assert set(bodies) == set(stored)
    for event_id, sent in bodies.items():
        assert len(sent) == 1, f"{event_id} was sent with different bodies"
        [raw] = sent
        event: dict[str, Any] = json.loads(raw)
        assert event == stored[event_id]
    # The receiver failed every request until the first process had stopped, so every
    # successful delivery was made by the restarted one.
    assert len(webhook_receiver.requests) > seen_while_down
