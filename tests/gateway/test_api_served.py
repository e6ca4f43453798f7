"""The gateway as an operator runs it: `stablegate-gateway migrate`, `create-merchant` and
`serve` as processes, configured through the environment, with real HTTP clients."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import httpx
import pytest
from sqlalchemy import func, select

from devnet.devnet import free_port
from stablegate_common.config import BusSettings, DatabaseSettings
from stablegate_common.db import Database
from stablegate_common.events import Event
from stablegate_common.hd import DEVNET_EVM_XPUB
from stablegate_gateway.addresses.models import DepositAddress
from tests.conftest import DATABASE_URL
from tests.fixtures.bus import delete_bus_topology, eventually

pytestmark = pytest.mark.slow

EXECUTABLE = str(Path(sys.executable).parent / "stablegate-gateway")
POOL_MIN_FREE = 30
POOL_BATCH = 15
CONCURRENT = 50


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
        GATEWAY_PUBLIC_BASE_URL="https://pay.example.test",
        GATEWAY_ADDRESS_POOL_MIN_FREE=str(POOL_MIN_FREE),
        GATEWAY_ADDRESS_POOL_BATCH=str(POOL_BATCH),
        LOG_JSON="true",
    )
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXECUTABLE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def topology(bus_settings: BusSettings) -> Iterator[list[str]]:
    """Queues the test and the served gateway declare, deleted afterwards."""
    queues = [
        f"{bus_settings.exchange}.gateway.network-heads",
        f"{bus_settings.exchange}.gateway.balances",
        f"{bus_settings.exchange}.dlq",
    ]
    yield queues
    loop = asyncio.new_event_loop()  # a loop of its own: this fixture is synchronous
    try:
        loop.run_until_complete(
            delete_bus_topology(
                bus_settings.url.get_secret_value(),
                exchanges=[bus_settings.exchange, f"{bus_settings.exchange}.dlx"],
                queues=queues,
            )
        )
    finally:
        loop.close()


@pytest.fixture
async def listener(
    bus_settings: BusSettings, topology: list[str]
) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A queue bound to every event the gateway publishes, declared before it starts."""
    connection = await aio_pika.connect(bus_settings.url.get_secret_value())
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        bus_settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    name = f"{bus_settings.exchange}.test.listener"
    topology.append(name)
    queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
    for key in ("address.*", "intent.*"):
        await queue.bind(exchange, key)
    try:
        yield queue
    finally:
        await connection.close()


async def take(queue: aio_pika.abc.AbstractQueue, count: int) -> list[Event]:
    taken: list[Event] = []

    async def enough() -> bool:
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            taken.append(Event.model_validate_json(message.body))
        return len(taken) >= count

    await eventually(enough, timeout=30)
    return taken


def test_migrate_and_create_merchant(gateway_env: dict[str, str]) -> None:
    migrated = run(gateway_env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout == ""
    created = run(gateway_env, "create-merchant", "--name", "Served Shop", "--mode", "live")
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    assert len(lines) == 1
    output = json.loads(lines[0])
    assert output["merchant_id"].startswith("mer_")
    assert output["name"] == "Served Shop"
    assert output["secret_key"].startswith("sk_live_")
    assert output["mode"] == "live"
    assert output["secret_key"] not in created.stderr
    # Migrating again is a no-op.
    assert run(gateway_env, "migrate").returncode == 0


def test_serve_refuses_to_start_without_an_xpub(gateway_env: dict[str, str]) -> None:
    missing = run({**gateway_env, "GATEWAY_EVM_XPUB": ""}, "serve")
    assert missing.returncode != 0
    assert "GATEWAY_EVM_XPUB is not set" in missing.stderr


async def test_serve_provisions_the_pool_and_serves_concurrent_clients(
    gateway_env: dict[str, str],
    listener: aio_pika.abc.AbstractQueue,
    tmp_path: Path,
) -> None:
    assert run(gateway_env, "migrate").returncode == 0
    merchant = json.loads(run(gateway_env, "create-merchant", "--name", "Served").stdout)
    log_path = tmp_path / "gateway.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [EXECUTABLE, "serve"], env=gateway_env, stdout=log, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{gateway_env['HTTP_PORT']}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            await wait_ready(client, server, log_path)
            # The pool was derived and announced before the first request.
            provisioned = await take(listener, 2)
            assert [
                (e.type, e.data["first_index"], len(e.data["addresses"])) for e in provisioned
            ] == [
                ("address.provisioned", 0, POOL_BATCH),
                ("address.provisioned", POOL_BATCH, POOL_BATCH),
            ]
            assert await free_addresses(gateway_env) == POOL_MIN_FREE

            headers = {"Authorization": f"Bearer {merchant['secret_key']}"}
            body = {"amount": "10.00", "currency": "USDC", "network": "ethereum"}
            responses = await asyncio.gather(
                *(
                    client.post("/v1/payment_intents", json=body, headers=headers)
                    for _ in range(CONCURRENT)
                )
            )
            assert [r.status_code for r in responses] == [200] * CONCURRENT
            assert len({r.json()["deposit_address"] for r in responses}) == CONCURRENT
            assert len({r.headers["Request-Id"] for r in responses}) == CONCURRENT
            announced = {a for e in provisioned for a in e.data["addresses"]}
            pool_ran_dry = await take(listener, CONCURRENT + 2)
            created = [e for e in pool_ran_dry if e.type == "intent.created"]
            assert {e.subject for e in created} == {r.json()["id"] for r in responses}
            announced |= {
                a
                for e in pool_ran_dry
                if e.type == "address.provisioned"
                for a in e.data["addresses"]
            }
            assert {e.data["deposit_address"] for e in created} <= announced

            missing = await client.get("/v1/nope")
            assert missing.status_code == 404
            assert missing.headers["Request-Id"].startswith("req_")
            metrics = (await client.get("/metrics")).text
            assert 'route="/v1/payment_intents",status="200"' in metrics
            assert "stablegate_http_request_duration_seconds_bucket" in metrics
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert any(line["message"] == "service stopped" for line in lines)
    requests = [line for line in lines if line["message"] == "request"]
    assert requests
    assert all(line["request_id"].startswith("req_") for line in requests)


async def wait_ready(client: httpx.AsyncClient, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"the gateway did not become ready:\n{log.read_text()}")


async def free_addresses(env: dict[str, str]) -> int:
    db = Database(DatabaseSettings(url=env["DATABASE_URL"], DATABASE_SCHEMA=env["DATABASE_SCHEMA"]))
    try:
        async with db.sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(DepositAddress)
                .where(DepositAddress.status == "free")
            )
        return int(count or 0)
    finally:
        await db.dispose()
