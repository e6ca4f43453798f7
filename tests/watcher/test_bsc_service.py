"""The real BSC watcher process (`stablegate-watcher-bsc migrate`, then `serve`) against
PostgreSQL, RabbitMQ and the BSC devnet; next to the Ethereum watcher on one exchange, and
refusing to start when the registry's decimals are wrong."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from devnet.devnet import free_port
from stablegate_common.bus import Bus
from stablegate_common.chains.evm import EvmClient
from stablegate_common.chains.provider_pools import EvmProviderPool
from stablegate_common.config import BusSettings, load_settings
from stablegate_common.events import Event, make_event
from stablegate_common.events.contracts import AddressesProvisioned
from stablegate_common.watcher.watchset import CONSUMER
from stablegate_watcher_bsc.app import SPEC, make_client
from stablegate_watcher_bsc.settings import BscWatcherSettings
from stablegate_watcher_eth.app import SPEC as ETH_SPEC
from tests.conftest import DATABASE_URL, drop_schema, unique
from tests.fixtures.anvil import AnvilChain, fresh_address, merged_overlay
from tests.fixtures.bus import BusFactory, delete_bus_topology
from tests.fixtures.watcher import eventually, intent_created

WEI = 10**18


# --- configuration -----------------------------------------------------------------------


def test_the_spec_names_the_bsc_service_network_and_schema() -> None:
    assert (SPEC.service, SPEC.network, SPEC.default_schema) == (
        "chain-watcher-bsc",
        "bsc",
        "watcher_bsc",
    )
    assert SPEC.migrations.is_dir()
    assert SPEC.migrations != ETH_SPEC.migrations


def test_confirmations_default_to_the_registrys_15_and_can_be_overridden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("STABLEGATE_ASSETS_FILE", "DATABASE_SCHEMA", "WATCHER_CONFIRMATIONS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(BscWatcherSettings, SPEC.default_schema)
    assert settings.database.schema_name == "watcher_bsc"
    network = settings.asset_registry().network("bsc")
    assert settings.watcher.engine_config(network).confirmations == 15
    monkeypatch.setenv("WATCHER_CONFIRMATIONS", "20")
    overridden = load_settings(BscWatcherSettings, SPEC.default_schema)
    assert overridden.watcher.engine_config(network).confirmations == 20


async def test_the_client_is_the_evm_client_in_poa_mode() -> None:
    settings = BscWatcherSettings().watcher.model_copy(
        update={"rpc_url": "http://127.0.0.1:1", "rpc_timeout_seconds": 3.0}
    )
    pool = make_client(settings)
    assert isinstance(pool, EvmProviderPool)
    [client] = [p.client for p in pool.providers]
    assert isinstance(client, EvmClient)
    assert client.poa is True
    assert client.rpc_url == "http://127.0.0.1:1"
    await pool.close()


def test_each_evm_watcher_has_a_watch_set_queue_of_its_own(bus_settings: BusSettings) -> None:
    """Both consume `address.provisioned` from one exchange: one queue each, or each
    announcement would reach only one of them."""
    bsc = Bus(bus_settings, service=SPEC.service).queue_name(CONSUMER)
    eth = Bus(bus_settings, service=ETH_SPEC.service).queue_name(CONSUMER)
    assert bsc == f"{bus_settings.exchange}.chain-watcher-bsc.watch-set"
    assert eth == f"{bus_settings.exchange}.chain-watcher-eth.watch-set"


# --- processes ---------------------------------------------------------------------------


def _command(script: str, module: str) -> list[str]:
    installed = shutil.which(script, path=str(Path(sys.executable).parent))
    return [installed] if installed else [sys.executable, "-m", module]


@dataclass
class WatcherProcess:
    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.env['HTTP_PORT']}"

    def migrate(self) -> None:
        done = subprocess.run(
            [*self.command, "migrate"], env=self.env, capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr.decode()

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.command, "serve"], env=self.env, stdout=log, stderr=log
            )

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def ready(self, http: httpx.AsyncClient) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited:\n{self.logs()[-3000:]}")
        try:
            return (await http.get(f"{self.base_url}/readyz")).status_code == 200
        except httpx.TransportError:
            return False


def _watcher(
    kind: str, chain: AnvilChain, assets_file: Path, bus: BusSettings, tmp_path: Path
) -> WatcherProcess:
    return WatcherProcess(
        name=kind,
        command=_command(f"stablegate-watcher-{kind}", f"stablegate_watcher_{kind}.cli"),
        env={
            **os.environ,
            "STABLEGATE_ENVIRONMENT": "test",
            "STABLEGATE_ASSETS_FILE": str(assets_file),
            "DATABASE_URL": DATABASE_URL,
            "DATABASE_SCHEMA": unique("t"),
            "RABBITMQ_URL": bus.url.get_secret_value(),
            "RABBITMQ_EXCHANGE": bus.exchange,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(free_port()),
            "WATCHER_RPC_URL": chain.rpc_url,
            "WATCHER_POLL_INTERVAL_SECONDS": "0.2",
            "LOG_LEVEL": "INFO",
        },
        log_path=tmp_path / f"watcher-{kind}.log",
    )


@pytest.fixture
def assets_file(anvil: AnvilChain, anvil_bsc: AnvilChain, tmp_path: Path) -> Path:
    """Both devnets in one overlay, as `make devnet` writes it."""
    path = tmp_path / "assets.json"
    path.write_text(json.dumps(merged_overlay(anvil, anvil_bsc)))
    return path


@pytest_asyncio.fixture(loop_scope="session")
async def watchers(
    anvil: AnvilChain,
    anvil_bsc: AnvilChain,
    assets_file: Path,
    bus_settings: BusSettings,
    tmp_path: Path,
) -> AsyncIterator[dict[str, WatcherProcess]]:
    procs = {
        "eth": _watcher("eth", anvil, assets_file, bus_settings, tmp_path),
        "bsc": _watcher("bsc", anvil_bsc, assets_file, bus_settings, tmp_path),
    }
    try:
        yield procs
    finally:
        for proc in procs.values():
            await asyncio.to_thread(proc.stop)
            await drop_schema(proc.env["DATABASE_SCHEMA"])
        await delete_bus_topology(
            bus_settings.url.get_secret_value(),
            exchanges=[],
            queues=[f"{bus_settings.exchange}.chain-watcher-{k}.watch-set" for k in procs],
        )


@pytest_asyncio.fixture(loop_scope="session")
async def observed(bus_factory: BusFactory) -> list[Event]:
    """Events the watchers publish, as a consumer of the test's exchange sees them."""
    seen: list[Event] = []
    observer = await bus_factory(service="observer")

    async def keep(event: Event) -> None:
        seen.append(event)

    await observer.consume("watcher-events", ["transfer.*", "chain.head"], keep)
    return seen


def _detected(observed: list[Event], tx_hash: str) -> list[Event]:
    return [e for e in observed if e.type == "transfer.detected" and e.data["tx_hash"] == tx_hash]


async def test_both_evm_watchers_on_one_exchange_each_report_their_own_network(
    anvil: AnvilChain,
    anvil_bsc: AnvilChain,
    watchers: dict[str, WatcherProcess],
    bus_factory: BusFactory,
    observed: list[Event],
) -> None:
    for proc in watchers.values():
        await asyncio.to_thread(proc.migrate)
        proc.start()
    async with httpx.AsyncClient(timeout=5) as http:

        async def all_ready() -> bool:
            return all([await p.ready(http) for p in watchers.values()])

        await eventually(all_ready, timeout=60)
        checks = (await http.get(f"{watchers['bsc'].base_url}/readyz")).json()["checks"]
        assert checks == {"database": "ok", "bus": "ok", "chain": "ok"}

        # One pool address for both watchers, and an Ethereum intent's address that only
        # its `intent.created` announces.
        pool_address, eth_intent_address = fresh_address(), fresh_address()
        publisher = await bus_factory(service="gateway")
        provisioned = make_event(
            AddressesProvisioned(family="evm", addresses=[pool_address], first_index=0),
            producer="gateway",
            subject="evm",
            sequence=1,
        )
        await publisher.publish(
            [provisioned, intent_created(eth_intent_address, network="ethereum")]
        )
        on_bsc = await anvil_bsc.transfer(anvil_bsc.usdt, pool_address, 42 * WEI)
        on_eth = await anvil.transfer(anvil.usdt, pool_address, 42_000_000)
        wrong_network = await anvil_bsc.transfer(anvil_bsc.usdt, eth_intent_address, 5 * WEI)

        def all_detected() -> bool:
            return all(_detected(observed, t) for t in (on_bsc, on_eth, wrong_network))

        await eventually(all_detected, timeout=30)
        expected: dict[str, tuple[str, str, str]] = {
            on_bsc: ("chain-watcher-bsc", "bsc", str(42 * WEI)),
            on_eth: ("chain-watcher-eth", "ethereum", "42000000"),
            wrong_network: ("chain-watcher-bsc", "bsc", str(5 * WEI)),
        }
        for tx_hash, (producer, network, amount) in expected.items():
            [event] = _detected(observed, tx_hash)
            assert (event.producer, event.data["network"]) == (producer, network)
            assert event.data["amount_base_units"] == amount

        metrics = (await http.get(f"{watchers['bsc'].base_url}/metrics")).text
        assert 'stablegate_watcher_head_block{network="bsc"}' in metrics
        assert 'stablegate_service_info{service="chain-watcher-bsc"' in metrics
    for proc in watchers.values():
        assert await asyncio.to_thread(proc.stop) == 0
    bsc_logs = watchers["bsc"].logs()
    assert '"service": "chain-watcher-bsc"' in bsc_logs
    assert "Traceback" not in bsc_logs


def _claiming_6_decimals(anvil: AnvilChain, anvil_bsc: AnvilChain) -> dict[str, Any]:
    overlay = merged_overlay(anvil, anvil_bsc)
    overlay["networks"]["bsc"]["assets"]["USDT"]["decimals"] = 6
    return overlay


async def test_a_registry_claiming_6_decimals_stops_the_service_with_the_reason(
    anvil: AnvilChain,
    anvil_bsc: AnvilChain,
    watchers: dict[str, WatcherProcess],
    tmp_path: Path,
) -> None:
    wrong = tmp_path / "wrong-assets.json"
    wrong.write_text(json.dumps(_claiming_6_decimals(anvil, anvil_bsc)))
    proc = watchers["bsc"]
    proc.env["STABLEGATE_ASSETS_FILE"] = str(wrong)
    await asyncio.to_thread(proc.migrate)
    proc.start()
    assert proc.process is not None
    code = await asyncio.to_thread(proc.process.wait, 60)
    assert code != 0
    logs = proc.logs()
    assert "TokenDecimalsMismatch" in logs
    assert f"bsc USDT at {anvil_bsc.usdt}: decimals() returns 18" in logs
    assert "the asset registry says 6" in logs
