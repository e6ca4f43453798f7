"""The whole suite as separate processes (gateway, watcher, reconciler, dashboard) against
the real PostgreSQL, RabbitMQ and the session's anvil, in schemas and an exchange of
their own; plus a local webhook receiver that records every request as received.

`e2e` runs the Ethereum path; `e2e_evm` adds the BSC devnet and its watcher, with both
networks in one assets overlay, as `make run` does; `e2e_tron` adds the Tron devnet and
the Tron watcher instead.

Every chain is reached through three hostile providers (tests/fixtures/hostile_rpc.py,
hostile_tron.py) with a quorum of two, for the watchers (`STABLEGATE_E2E_WATCHER_QUORUM`
changes theirs) and the reconciler alike, and a background schedule makes them lag,
flap, rate-limit, fail and drop connections in turn (tests/fixtures/hostile_chaos.py),
including replicas that answer `[]` logs for blocks they have headers of (caught only by
the engine's lagging-replica detection; `STABLEGATE_E2E_EMPTY_LOGS=0` leaves those out)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from bip_utils import Bip44, Bip44Coins

from devnet.tron import TronDevnet
from tests.conftest import DATABASE_URL, RABBITMQ_URL, unique
from tests.dashboard.support import PASSWORD
from tests.fixtures.anvil import AnvilChain, merged_overlay
from tests.fixtures.hostile_chaos import BackgroundLoop, Hostile, chaos
from tests.fixtures.hostile_rpc import hostile_providers
from tests.fixtures.hostile_tron import hostile_tron_nodes

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from suite import Suite, drop_suite, free_port, standard_services

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"


@dataclass
class ReceivedWebhook:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class WebhookReceiver:
    url: str
    received: list[ReceivedWebhook] = field(default_factory=list)
    fail_next: int = 0

    def of_type(self, event_type: str) -> list[ReceivedWebhook]:
        return [r for r in self.received if r.event["type"] == event_type]


def verify_signature(secret: str, header: str, body: bytes) -> bool:
    """The merchant's side of `Stablegate-Signature: t=…,v1=…` (DESIGN.md §3)."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts["v1"])


@pytest_asyncio.fixture(loop_scope="session")
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    port = free_port()
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{port}/hooks")

    async def handle(request: web.Request) -> web.Response:
        if receiver.fail_next > 0:
            receiver.fail_next -= 1
            return web.Response(status=500)
        receiver.received.append(ReceivedWebhook(dict(request.headers), await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hooks", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield receiver
    await runner.cleanup()


@dataclass
class RunningSuite:
    suite: Suite
    schema_prefix: str
    exchange: str
    merchant_id: str
    secret_key: str
    providers: dict[str, list[Hostile]] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return self.suite.url("gateway")

    @property
    def dashboard(self) -> str:
        return self.suite.url("dashboard")

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.gateway,
            headers={"Authorization": f"Bearer {self.secret_key}"},
            timeout=10,
        )

    async def query(self, schema: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(DATABASE_URL)
        try:
            await conn.execute(f'SET search_path TO "{self.schema_prefix}{schema}"')
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


def fresh_xpubs() -> dict[str, str]:
    """Account xpubs of a random seed, so each suite's deposit addresses are its own.

    The suites share one chain per network; with the devnet's published xpub every
    gateway would hand out the same addresses, and a suite would see (and might credit)
    payments another suite made to them moments earlier."""
    seed = secrets.token_bytes(32)
    return {
        f"GATEWAY_{family}_XPUB": Bip44.FromSeed(seed, coin)
        .Purpose()
        .Coin()
        .Account(0)
        .PublicKey()
        .ToExtended()
        for family, coin in (("EVM", Bip44Coins.ETHEREUM), ("TRON", Bip44Coins.TRON))
    }


PROVIDERS_PER_CHAIN = 3
PROVIDER_ENV = {
    "WATCHER_RPC_URL": "",
    "WATCHER_RPC_QUORUM": os.environ.get("STABLEGATE_E2E_WATCHER_QUORUM", "2"),
    "WATCHER_RPC_BACKOFF_SECONDS": "0.2",
    "WATCHER_RPC_MAX_BACKOFF_SECONDS": "2",
}
WATCHERS = {"ethereum": "watcher-eth", "bsc": "watcher-bsc", "tron": "watcher-tron"}


@contextlib.contextmanager
def _hostile(
    background: BackgroundLoop, upstreams: Mapping[str, str], tron: TronDevnet | None
) -> Iterator[dict[str, list[Hostile]]]:
    """Three hostile providers per chain (EVM upstreams by network, and the Tron devnet),
    served from `background`: the harness blocks this loop while processes start."""
    stack = contextlib.AsyncExitStack()

    async def open_all() -> dict[str, list[Hostile]]:
        chains: dict[str, list[Hostile]] = {}
        for network, url in upstreams.items():
            evm = await stack.enter_async_context(hostile_providers([url] * PROVIDERS_PER_CHAIN))
            chains[network] = list(evm)
        if tron is not None:
            nodes = await stack.enter_async_context(
                hostile_tron_nodes([tron.url] * PROVIDERS_PER_CHAIN)
            )
            chains["tron"] = list(nodes)
        return chains

    try:
        yield background.run(open_all())
    finally:
        background.run(stack.aclose())
        background.close()


def _provider_env(chains: Mapping[str, list[Hostile]], services: list[Any]) -> None:
    """Point every watcher and the reconciler at the hostile providers."""
    by_name = {spec.name: spec for spec in services}
    for network, proxies in chains.items():
        watcher = by_name.get(WATCHERS[network])
        if watcher is not None:
            watcher.env.update(PROVIDER_ENV)
            watcher.env["WATCHER_RPC_URLS"] = json.dumps([p.url for p in proxies])
    reconciler = by_name["reconciler"]
    reconciler.env["RECONCILER_RPC_URLS"] = json.dumps(
        {network: [p.url for p in proxies] for network, proxies in chains.items()}
    )
    reconciler.env["RECONCILER_RPC_QUORUM"] = "2"
    reconciler.env["RECONCILER_RPC_BACKOFF_SECONDS"] = "0.2"
    reconciler.env["RECONCILER_RPC_MAX_BACKOFF_SECONDS"] = "2"


@contextlib.asynccontextmanager
async def _suite(
    anvil: AnvilChain,
    name: str,
    *,
    bsc: AnvilChain | None = None,
    tron: TronDevnet | None = None,
    service_env: Mapping[str, Mapping[str, str]] | None = None,
) -> AsyncIterator[RunningSuite]:
    """The suite on `anvil` (Ethereum), and on `bsc` and `tron` too when given;
    `service_env` adds variables to one service's environment (by service name)."""
    prefix = unique("e2e") + "_"
    exchange = unique("stablegate.e2e")
    log_dir = ARTIFACTS / name / prefix.rstrip("_")
    assets_file = anvil.assets_file
    if bsc is not None or tron is not None:
        assets_file = log_dir / "assets.json"
        log_dir.mkdir(parents=True, exist_ok=True)
        overlay = merged_overlay(anvil, *([bsc] if bsc is not None else []))
        if tron is not None:
            overlay["networks"].update(tron.assets_overlay()["networks"])
        assets_file.write_text(json.dumps(overlay))
    base_env = {
        "DATABASE_URL": DATABASE_URL,
        "RABBITMQ_URL": RABBITMQ_URL,
        "RABBITMQ_EXCHANGE": exchange,
        "STABLEGATE_ASSETS_FILE": str(assets_file),
        "STABLEGATE_ENVIRONMENT": "test",
        "LOG_LEVEL": "INFO",
        "GATEWAY_EXPIRY_JOB_SECONDS": "1",
        "RECONCILER_INTERVAL_SECONDS": "2",
    }
    names = ("gateway", "watcher-eth", "reconciler", "dashboard", "watcher-bsc", "watcher-tron")
    ports = {s: free_port() for s in names}
    services = standard_services(
        rpc_url=anvil.rpc_url,
        bsc_rpc_url=bsc.rpc_url if bsc is not None else None,
        tron_url=tron.url if tron is not None else None,
        schema_prefix=prefix,
        ports=ports,
    )
    for spec in services:
        if spec.name == "gateway":
            xpubs = fresh_xpubs()
            spec.env["GATEWAY_EVM_XPUB"] = xpubs["GATEWAY_EVM_XPUB"]
            if tron is not None:
                spec.env["GATEWAY_TRON_XPUB"] = xpubs["GATEWAY_TRON_XPUB"]
    upstreams = {"ethereum": anvil.rpc_url, **({"bsc": bsc.rpc_url} if bsc is not None else {})}
    empty_logs = os.environ.get("STABLEGATE_E2E_EMPTY_LOGS", "1") == "1"
    background = BackgroundLoop()
    with _hostile(background, upstreams, tron) as chains:
        _provider_env(chains, services)
        for spec in services:  # a test's own variables win over the providers' defaults
            spec.env.update((service_env or {}).get(spec.name, {}))
        suite = Suite(base_env, services, log_dir)
        try:
            suite.migrate_all()
            merchant = json.loads(suite.cli("gateway", "create-merchant", "--name", "E2E").stdout)
            suite.start_all()
            suite.wait_ready(timeout=90)
            with chaos(background, list(chains.values()), empty_logs=empty_logs):
                yield RunningSuite(
                    suite,
                    prefix,
                    exchange,
                    merchant["merchant_id"],
                    merchant["secret_key"],
                    providers=chains,
                )
            # The suite did run through hostile providers: on every chain some misbehaved
            # (a short module can end before the schedule has reached each of them).
            for network, proxies in chains.items():
                misbehaved = sum(p.failures + p.lagged for p in proxies)
                assert misbehaved > 0, f"every {network} provider was honest"
        finally:
            suite.stop_all()
            await drop_suite(DATABASE_URL, RABBITMQ_URL, schema_prefix=prefix, exchange=exchange)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def e2e(anvil: AnvilChain, request: pytest.FixtureRequest) -> AsyncIterator[RunningSuite]:
    async with _suite(anvil, request.module.__name__.rsplit(".", 1)[-1]) as running:
        yield running


# The BSC watcher gives up on a silent node after this long: a paused node counts as down
# within seconds, not after the default 10 s (test_bsc_payment.py takes the node away).
BSC_RPC_TIMEOUT_SECONDS = "2"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def e2e_evm(
    anvil: AnvilChain, anvil_bsc: AnvilChain, request: pytest.FixtureRequest
) -> AsyncIterator[RunningSuite]:
    """The suite on both EVM devnets: Ethereum and BSC watchers, one assets overlay."""
    env = {"watcher-bsc": {"WATCHER_RPC_TIMEOUT_SECONDS": BSC_RPC_TIMEOUT_SECONDS}}
    name = request.module.__name__.rsplit(".", 1)[-1]
    async with _suite(anvil, name, bsc=anvil_bsc, service_env=env) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def e2e_tron(
    anvil: AnvilChain, tron_devnet: TronDevnet, request: pytest.FixtureRequest
) -> AsyncIterator[RunningSuite]:
    """The suite with the Tron watcher on the session's Tron devnet (and Ethereum)."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    async with _suite(anvil, name, tron=tron_devnet) as running:
        yield running


async def create_user(suite: RunningSuite, email: str, role: str) -> None:
    """A dashboard user, created with the dashboard's CLI (password: tests.dashboard.support)."""
    spec = suite.suite.spec("dashboard")
    process = await asyncio.create_subprocess_exec(
        spec.command,
        "create-user",
        "--email",
        email,
        "--role",
        role,
        "--password-stdin",
        env=suite.suite.env_for(spec),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(f"{PASSWORD}\n".encode()), 120)
    assert process.returncode == 0, err.decode()[-2000:]
    assert PASSWORD not in out.decode()
