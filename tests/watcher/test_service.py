"""The real Ethereum watcher process: `stablegate-watcher-eth migrate`, then `serve` with
its configuration in the environment, against PostgreSQL, RabbitMQ and anvil."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from stablegate_common.config import BusSettings
from stablegate_common.events import Event, make_event
from stablegate_common.events.contracts import AddressesProvisioned
from tests.conftest import DATABASE_URL
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.bus import BusFactory, delete_bus_topology
from tests.fixtures.watcher import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

SERVICE = "chain-watcher-eth"


def _command() -> list[str]:
    installed = shutil.which("stablegate-watcher-eth", path=str(Path(sys.executable).parent))
    if installed is None:
        return [sys.executable, "-m", "stablegate_watcher_eth.cli"]
    return [installed]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def service_env(anvil: AnvilChain, schema_name: str, bus_settings: BusSettings) -> dict[str, str]:
    port = _free_port()
    env = {
        **os.environ,
        "STABLEGATE_ENVIRONMENT": "test",
        "STABLEGATE_ASSETS_FILE": str(anvil.assets_file),
        "DATABASE_URL": DATABASE_URL,
        "DATABASE_SCHEMA": schema_name,
        "RABBITMQ_URL": bus_settings.url.get_secret_value(),
        "RABBITMQ_EXCHANGE": bus_settings.exchange,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "WATCHER_RPC_URL": anvil.rpc_url,
        "WATCHER_POLL_INTERVAL_SECONDS": "0.2",
        "LOG_LEVEL": "INFO",
    }
    return env


@pytest_asyncio.fixture(loop_scope="session")
async def observed(bus_factory: BusFactory) -> AsyncIterator[list[Event]]:
    """Events the watcher publishes, as a consumer of the test's exchange sees them."""
    seen: list[Event] = []
    observer = await bus_factory(service="observer")

    async def keep(event: Event) -> None:
        seen.append(event)

    await observer.consume("watcher-events", ["transfer.*", "chain.head"], keep)
    yield seen


async def test_service_migrates_serves_health_and_publishes_detected_transfers(
    anvil: AnvilChain,
    service_env: dict[str, str],
    bus_factory: BusFactory,
    bus_settings: BusSettings,
    observed: list[Event],
    tmp_path: Path,
) -> None:
    migrate = await asyncio.to_thread(
        subprocess.run, [*_command(), "migrate"], env=service_env, capture_output=True, timeout=60
    )
    assert migrate.returncode == 0, migrate.stderr.decode()

    log_path = tmp_path / "watcher.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([*_command(), "serve"], env=service_env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{service_env['HTTP_PORT']}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            await _serving(http, process, log_path)
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            await eventually(lambda: _status(http, "/readyz", 200), timeout=30)
            checks = (await http.get("/readyz")).json()["checks"]
            assert checks == {"database": "ok", "bus": "ok", "chain": "ok"}

            # Announced, then paid at once: the event may still be on its way.
            deposit = fresh_address()
            publisher = await bus_factory(service="gateway")
            await publisher.publish([_provisioned(deposit)])
            tx_hash = await anvil.transfer(anvil.usdt, deposit, 42_000_000)

            await eventually(lambda: _published(observed, tx_hash), timeout=30)
            [detected] = [e for e in observed if e.type == "transfer.detected"]
            assert detected.producer == SERVICE
            assert detected.data["to_address"] == deposit
            assert detected.data["amount_base_units"] == "42000000"
            assert any(e.type == "chain.head" for e in observed)

            metrics = (await http.get("/metrics")).text
            assert 'stablegate_watcher_head_block{network="ethereum"}' in metrics
            assert 'stablegate_watcher_leader{network="ethereum"} 1.0' in metrics
            assert _sample(metrics, "stablegate_watcher_transfers_total", "detected") >= 1
            assert 'stablegate_service_info{service="chain-watcher-eth"' in metrics
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        await delete_bus_topology(
            bus_settings.url.get_secret_value(),
            exchanges=[],
            queues=[f"{bus_settings.exchange}.{SERVICE}.watch-set"],
        )
    logs = log_path.read_text()
    assert '"service": "chain-watcher-eth"' in logs
    assert "Traceback" not in logs


async def test_serve_without_a_node_url_exits_with_a_clear_message(
    service_env: dict[str, str],
) -> None:
    env = {k: v for k, v in service_env.items() if k != "WATCHER_RPC_URL"}
    result = await asyncio.to_thread(
        subprocess.run, [*_command(), "serve"], env=env, capture_output=True, timeout=60
    )
    assert result.returncode != 0
    assert b"WATCHER_RPC_URL is required" in result.stderr


def _provisioned(address: str) -> Event:
    return make_event(
        AddressesProvisioned(family="evm", addresses=[address], first_index=0),
        producer="gateway",
        subject="evm",
        sequence=1,
    )


async def _serving(http: httpx.AsyncClient, process: subprocess.Popen[bytes], log: Path) -> None:
    async def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"watcher exited {process.returncode}:\n{log.read_text()}")
        return await _status(http, "/healthz", 200)

    await eventually(up, timeout=30)


async def _status(http: httpx.AsyncClient, path: str, expected: int) -> bool:
    try:
        return (await http.get(path)).status_code == expected
    except httpx.TransportError:
        return False


def _published(observed: list[Event], tx_hash: str) -> bool:
    return any(e.type == "transfer.detected" and e.data["tx_hash"] == tx_hash for e in observed)


def _sample(metrics: str, name: str, outcome: str) -> float:
    prefix = f'{name}{{network="ethereum",outcome="{outcome}"}} '
    for line in metrics.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0
