"""Run the whole suite locally as separate processes under one small supervisor.

`python scripts/suite.py run` (what `make run` calls): checks PostgreSQL and RabbitMQ,
starts the devnet, migrates every service, starts them, creates a demo merchant and
prints how to use it (and leaves the demo merchant's key in .state/demo.json for
`make demo`). The same `Suite` class starts the services for the end-to-end tests, each in
schemas and an exchange of its own.

The suite's state (schemas, queues) belongs to the devnet chains it was built on: each
`devnet.py start` begins a chain at block 0, so when the chains' genesis hashes differ
from the ones recorded in .state/chains.json, `make run` drops the suite's state before
it starts the services (`reset_for_new_chains`).

Children die with the supervisor: `make run` binds each service to it (PR_SET_PDEATHSIG, so
even a SIGKILL of the supervisor stops them) and puts it in a process group of its own (so
Ctrl-C reaches the supervisor only, which stops them in order); the supervisor itself is
bound to `make` the same way, and stops the devnet at exit when it started it.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
DEVNET_STATE = ROOT / "devnet" / ".state"
DEMO_STATE = ROOT / ".state" / "demo.json"  # what `make demo` (scripts/demo.py) reads
# Which devnet chains (genesis hashes) the suite's state in a database + exchange is on.
SUITE_CHAINS = ROOT / ".state" / "chains.json"
DEMO_OPS_LOGIN = "ops@example.com"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
DEVNET_EVM_XPUB = (
    "xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh5"
    "GFZaM6si3yZdUsT8ddYM3PwnATt"
)
# Account xpub m/44'/195'/0' of the same published test mnemonic (stablegate_common.hd).
DEVNET_TRON_XPUB = (
    "xpub6D1AabNHCupeiLM65ZR9UStMhJ1vCpyV4XbZdyhMZBiJXALQtmn9p42VTQckoHVn8WNqS7dqnJokZHAH"
    "cHGoaQgmv8D45oNUKx6DZMNZBCd"
)


@dataclass
class ServiceSpec:
    name: str  # console script suffix: stablegate-<name>
    schema: str
    port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def command(self) -> str:
        return str(BIN / f"stablegate-{self.name}")


@dataclass
class Running:
    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    log_path: Path


class Suite:
    """Starts, watches and stops the services; every process gets `base_env` + its own."""

    def __init__(
        self,
        base_env: Mapping[str, str],
        services: list[ServiceSpec],
        log_dir: Path,
        *,
        bind_children: bool = False,
    ):
        self.base_env = dict(base_env)
        self.services = services
        self.log_dir = log_dir
        # Off for the tests: PDEATHSIG fires when the spawning *thread* exits, and fixtures
        # may start services from a worker thread.
        self.bind_children = bind_children
        self.running: dict[str, Running] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def env_for(self, spec: ServiceSpec) -> dict[str, str]:
        env = {**os.environ, **self.base_env, **spec.env}
        env["DATABASE_SCHEMA"] = spec.schema
        env["HTTP_PORT"] = str(spec.port)
        return env

    def cli(
        self, name: str, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        spec = self.spec(name)
        return subprocess.run(
            [spec.command, *args],
            env=self.env_for(spec),
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def spec(self, name: str) -> ServiceSpec:
        return next(s for s in self.services if s.name == name)

    def migrate_all(self) -> None:
        for spec in self.services:
            result = self.cli(spec.name, "migrate", check=False)
            if result.returncode != 0:
                raise RuntimeError(f"{spec.name} migrate failed:\n{result.stderr[-3000:]}")

    def start(self, name: str) -> Running:
        spec = self.spec(name)
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("ab")
        process = subprocess.Popen(
            [spec.command, "serve"],
            env=self.env_for(spec),
            stdout=log,
            stderr=log,
            preexec_fn=die_with_parent if self.bind_children else None,
            process_group=0 if self.bind_children else None,
        )
        self.running[name] = Running(spec, process, log_path)
        return self.running[name]

    def start_all(self) -> None:
        for spec in self.services:
            self.start(spec.name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.spec(name).port}"

    def wait_ready(self, timeout: float = 60.0, names: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        for name in names or [s.name for s in self.services]:
            while True:
                running = self.running[name]
                if running.process.poll() is not None:
                    raise RuntimeError(f"{name} exited early:\n{self.tail(name)}")
                if _http_ok(f"{self.url(name)}/readyz"):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not ready after {timeout}s:\n{self.tail(name)}")
                time.sleep(0.2)

    def stop(self, name: str, *, timeout: float = 20.0, kill: bool = False) -> int:
        running = self.running.pop(name)
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                running.process.wait(timeout)
            except subprocess.TimeoutExpired:
                running.process.kill()
                running.process.wait()
        return running.process.returncode

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            self.stop(name)

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
            return bool(response.status == 200)
    except OSError:
        return False


def die_with_parent() -> None:
    """Ask the kernel to SIGTERM this process when its parent dies (Linux), however the
    parent dies. Called in the supervisor itself and, before exec, in each child."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_dependencies(database_url: str, rabbitmq_url: str) -> list[str]:
    """Problems with PostgreSQL or RabbitMQ, each with how to fix it (empty when fine)."""
    problems = []
    for label, url, default_port, how in (
        (
            "PostgreSQL",
            database_url,
            5432,
            "start it (Debian): pg_ctlcluster --skip-systemctl-redirect "
            "$(ls /etc/postgresql) main start, or set DATABASE_URL to yours",
        ),
        (
            "RabbitMQ",
            rabbitmq_url,
            5672,
            "start it: rabbitmq-server -detached, or set RABBITMQ_URL to yours",
        ),
    ):
        parsed = urlparse(url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
        try:
            socket.create_connection((host, port), timeout=2).close()
        except OSError as exc:
            problems.append(f"{label} is not reachable at {host}:{port} ({exc}); {how}")
    return problems


async def drop_suite(
    database_url: str, rabbitmq_url: str, *, schema_prefix: str, exchange: str
) -> None:
    """Remove what a suite started with `schema_prefix` and `exchange` left behind: its
    schemas, its exchanges and (where rabbitmqctl can list them) its queues. The e2e
    tests and the benchmarks run each suite in a prefix of its own and drop it after."""
    await _drop_schemas(database_url, schema_prefix=schema_prefix)
    await _drop_bus(rabbitmq_url, exchange)


async def _drop_schemas(
    database_url: str, *, schema_prefix: str | None = None, names: Sequence[str] = ()
) -> None:
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        if schema_prefix is not None:
            rows = await conn.fetch(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", schema_prefix + "%"
            )
            names = [*names, *(row["nspname"] for row in rows)]
        for name in names:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


async def _drop_bus(rabbitmq_url: str, exchange: str) -> bool:
    """Delete the exchange's queues and exchanges; False when its queues could not be
    listed (no rabbitmqctl here), so only the exchanges went."""
    import aio_pika

    queues = _queues_named(exchange + ".")
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        channel = await connection.channel()
        for queue in queues or []:
            await channel.queue_delete(queue)
        for name in (exchange, f"{exchange}.dlx"):
            await channel.exchange_delete(name)
    finally:
        await connection.close()
    return queues is not None


SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def _queues_named(prefix: str) -> list[str] | None:
    """Queue names starting with `prefix`; None without rabbitmqctl to list them."""
    # Debian puts it in /usr/sbin, which a minimal PATH (CI's `env -i`) leaves out: then
    # every suite's queues were left behind, hundreds a run, until the broker choked.
    search = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    rabbitmqctl = shutil.which("rabbitmqctl", path=search)
    if rabbitmqctl is None:
        return None
    out = subprocess.run(
        [rabbitmqctl, "list_queues", "-q", "--no-table-headers", "name"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [q.strip() for q in out.splitlines() if q.strip().startswith(prefix)]


def standard_services(
    *,
    rpc_url: str,
    bsc_rpc_url: str | None = None,
    tron_url: str | None = None,
    schema_prefix: str = "",
    ports: Mapping[str, int] | None = None,
) -> list[ServiceSpec]:
    """The services of a local suite: `rpc_url` is the Ethereum node; with `bsc_rpc_url`
    the BSC watcher runs too and the reconciler reads BSC balances; with `tron_url` (a
    java-tron HTTP API) the Tron watcher runs, the gateway derives Tron deposit addresses
    and the reconciler reads Tron balances."""
    ports = dict(ports or {})
    rpc_urls = {"ethereum": rpc_url}
    if bsc_rpc_url is not None:
        rpc_urls["bsc"] = bsc_rpc_url
    if tron_url is not None:
        rpc_urls["tron"] = tron_url
    services = [
        ServiceSpec(
            "gateway",
            f"{schema_prefix}gateway",
            ports.get("gateway", 8000),
            {"GATEWAY_EVM_XPUB": DEVNET_EVM_XPUB, "GATEWAY_WEBHOOK_ALLOW_PRIVATE_URLS": "true"},
        ),
        ServiceSpec(
            "watcher-eth",
            f"{schema_prefix}watcher_ethereum",
            ports.get("watcher-eth", 8101),
            {"WATCHER_RPC_URL": rpc_url, "WATCHER_POLL_INTERVAL_SECONDS": "0.25"},
        ),
        ServiceSpec(
            "reconciler",
            f"{schema_prefix}reconciler",
            ports.get("reconciler", 8102),
            {"RECONCILER_RPC_URLS": json.dumps(rpc_urls)},
        ),
        ServiceSpec("dashboard", f"{schema_prefix}dashboard", ports.get("dashboard", 8103)),
    ]
    if bsc_rpc_url is not None:
        services.append(
            ServiceSpec(
                "watcher-bsc",
                f"{schema_prefix}watcher_bsc",
                ports.get("watcher-bsc", 8104),
                {"WATCHER_RPC_URL": bsc_rpc_url, "WATCHER_POLL_INTERVAL_SECONDS": "0.25"},
            )
        )
    if tron_url is not None:
        gateway = next(spec for spec in services if spec.name == "gateway")
        gateway.env["GATEWAY_TRON_XPUB"] = DEVNET_TRON_XPUB
        services.append(
            ServiceSpec(
                "watcher-tron",
                f"{schema_prefix}watcher_tron",
                ports.get("watcher-tron", 8105),
                {"WATCHER_RPC_URL": tron_url, "WATCHER_POLL_INTERVAL_SECONDS": "0.25"},
            )
        )
    return services


@contextlib.contextmanager
def running_suite(suite: Suite) -> Iterator[Suite]:
    try:
        suite.migrate_all()
        suite.start_all()
        suite.wait_ready()
        yield suite
    finally:
        suite.stop_all()


def devnet_genesis(chains: Mapping[str, str], tron_url: str | None) -> dict[str, str]:
    """The genesis block hash of each running devnet chain (`chains`: network → JSON-RPC
    URL): a chain started again from block 0 has a new one."""
    call = {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["0x0", False]}
    genesis = {net: _post_json(url, call)["result"]["hash"] for net, url in chains.items()}
    if tron_url is not None:
        block = _post_json(tron_url.rstrip("/") + "/wallet/getblockbynum", {"num": 0})
        genesis["tron"] = block["blockID"]
    return genesis


def _post_json(url: str, body: Mapping[str, object]) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local URL
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def reset_for_new_chains(
    database_url: str,
    rabbitmq_url: str,
    exchange: str,
    services: Sequence[ServiceSpec],
    genesis: Mapping[str, str],
) -> bool:
    """Drop the suite's schemas, queues and demo state when they were built on other
    chains than the running devnet's (or on chains nobody recorded); True when it did.

    The services' state and the chains go together or not at all: a watcher whose cursor
    is above a new chain's head would skip the chain's first blocks, and the ledger would
    hold payments the chain never had. The record is written before any service starts,
    so it stays true however `make run` ends (even kill -9)."""
    key = f"{database_url} {exchange}"
    try:
        recorded = json.loads(SUITE_CHAINS.read_text())
    except (OSError, ValueError):
        recorded = {}
    if recorded.get(key) == dict(genesis):
        return False
    schemas = [spec.schema for spec in services]
    listed = asyncio.run(_reset_state(database_url, rabbitmq_url, exchange, schemas))
    DEMO_STATE.unlink(missing_ok=True)
    print(
        "stablegate: the devnet chains are new (started from block 0), so the suite's "
        f"state of earlier chains is dropped: schemas {', '.join(schemas)}; exchange "
        f"{exchange!r} and its queues.",
        flush=True,
    )
    if not listed:
        print(
            f"stablegate: rabbitmqctl is missing, so queues {exchange}.* were not deleted and "
            "may still hold events of the old chains",
            file=sys.stderr,
        )
    SUITE_CHAINS.parent.mkdir(parents=True, exist_ok=True)
    SUITE_CHAINS.write_text(json.dumps({**recorded, key: dict(genesis)}, indent=2))
    return True


async def _reset_state(
    database_url: str, rabbitmq_url: str, exchange: str, schemas: Sequence[str]
) -> bool:
    await _drop_schemas(database_url, names=schemas)
    return await _drop_bus(rabbitmq_url, exchange)


def _let_dashboard_act(suite: Suite, secret_key: str) -> None:
    """Restart the dashboard with the demo merchant's key (its actions go through the
    gateway API) and the services its system page probes."""
    others = [s.name for s in suite.services if s.name != "dashboard"]
    suite.spec("dashboard").env.update(
        {
            "DASHBOARD_GATEWAY_URL": suite.url("gateway"),
            "DASHBOARD_GATEWAY_API_KEY": secret_key,
            "DASHBOARD_SERVICE_URLS": json.dumps({name: suite.url(name) for name in others}),
        }
    )
    suite.stop("dashboard")
    suite.start("dashboard")
    suite.wait_ready(names=["dashboard"])


def _run_local() -> int:
    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    rabbitmq_url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    problems = check_dependencies(database_url, rabbitmq_url)
    if problems:
        for problem in problems:
            print(f"stablegate: {problem}", file=sys.stderr)
        return 1
    die_with_parent()  # `make` killed: this supervisor gets SIGTERM and stops the rest
    stop = False  # set by a signal: finish starting, then stop everything in order

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    devnet = [str(BIN / "python"), str(ROOT / "devnet" / "devnet.py")]
    if subprocess.run([*devnet, "status"], capture_output=True, check=False).returncode != 0:
        # Ours to stop at exit (a devnet that `make devnet` left running is not).
        atexit.register(subprocess.run, [*devnet, "stop"], capture_output=True, check=False)
    # Starts every devnet chain (the anvils, and Tron's) into one assets.json.
    subprocess.run([*devnet, "start"], check=True)
    chain = json.loads((DEVNET_STATE / "ethereum.json").read_text())
    bsc = json.loads((DEVNET_STATE / "bsc.json").read_text())
    tron_state = DEVNET_STATE / "tron.json"  # the Tron devnet writes it once it listens
    tron = json.loads(tron_state.read_text()) if tron_state.exists() else None
    base_env = {
        "DATABASE_URL": database_url,
        "RABBITMQ_URL": rabbitmq_url,
        "STABLEGATE_ASSETS_FILE": str(DEVNET_STATE / "assets.json"),
        "STABLEGATE_ENVIRONMENT": "development",
        "LOG_LEVEL": "INFO",
    }
    services = standard_services(
        rpc_url=chain["rpc_url"],
        bsc_rpc_url=bsc["rpc_url"],
        tron_url=tron["http_url"] if tron else None,
    )
    genesis = devnet_genesis(
        {"ethereum": chain["rpc_url"], "bsc": bsc["rpc_url"]}, tron["http_url"] if tron else None
    )
    exchange = os.environ.get("RABBITMQ_EXCHANGE", "stablegate")
    reset_for_new_chains(database_url, rabbitmq_url, exchange, services, genesis)
    suite = Suite(base_env, services, ROOT / ".state" / "logs", bind_children=True)
    with running_suite(suite):
        merchant = json.loads(suite.cli("gateway", "create-merchant", "--name", "Demo shop").stdout)
        key = merchant["secret_key"]
        api = suite.url("gateway")
        _let_dashboard_act(suite, key)
        ops_password = _demo_ops_user(suite)
        _write_demo_state(
            {"api": api, "secret_key": key, "merchant_id": merchant["merchant_id"]}
            | {"dashboard": suite.url("dashboard"), "ops_login": DEMO_OPS_LOGIN}
            | {"ops_password": ops_password}
        )
        print(
            f"""
Stablegate is running (logs in {suite.log_dir}).
  API         {api}/v1   (OpenAPI: {api}/docs)
  demo key    {key}   (shown once; merchant {merchant["merchant_id"]})
  dashboard   {suite.url("dashboard")}   login {DEMO_OPS_LOGIN} / {ops_password or "(as before)"}
  chains      ethereum {chain["rpc_url"]} (anvil, chain id {chain["chain_id"]})
              bsc      {bsc["rpc_url"]} (anvil, chain id {bsc["chain_id"]})
              tron     {tron["http_url"] if tron else "(not running)"} (java-tron HTTP API devnet)

Create a payment intent:
  curl -s {api}/v1/payment_intents -H 'Authorization: Bearer {key}' \\
    -H 'Content-Type: application/json' \\
    -d '{{"amount": "25.00", "currency": "USDT", "network": "ethereum"}}'
  (or "network": "bsc"; pay with: uv run python devnet/devnet.py pay --network bsc \\
    --to <deposit_address> --amount 25)

Simulated customer payments (exact, partial, late) for the dashboard: make demo
Ctrl-C stops everything.""",
            flush=True,
        )
        while not stop:
            for name, running in list(suite.running.items()):
                if running.process.poll() is not None:
                    print(f"{name} exited; restarting. Last lines:\n{suite.tail(name)}")
                    suite.running.pop(name)
                    suite.start(name)
            time.sleep(1)
    return 0


def _demo_ops_user(suite: Suite) -> str | None:
    """The dashboard's demo login: created with a fresh password, or, when an earlier run
    created it, that run's password from .state/demo.json (None if it is gone)."""
    password = secrets.token_urlsafe(12)
    args = ["create-user", "--email", DEMO_OPS_LOGIN, "--role", "admin", "--password-stdin"]
    if suite.cli("dashboard", *args, check=False, stdin=password + "\n").returncode == 0:
        return password
    try:
        previous = json.loads(DEMO_STATE.read_text()).get("ops_password")
    except (OSError, ValueError):
        return None
    return previous if isinstance(previous, str) else None


def _write_demo_state(state: dict[str, str | None]) -> None:
    """Owner-only: it holds the demo merchant's secret key and the ops password."""
    DEMO_STATE.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(DEMO_STATE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(state, file, indent=2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["run"])
    parser.parse_args()
    return _run_local()


if __name__ == "__main__":
    raise SystemExit(main())
