"""Run the whole suite locally as separate processes under one small supervisor.

`python scripts/suite.py run` (what `make run` calls): checks PostgreSQL and RabbitMQ,
starts the devnet, migrates every service, starts them, creates a demo merchant and
prints how to use it. The same `Suite` class starts the services for the end-to-end
tests, each in schemas and an exchange of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
DEVNET_STATE = ROOT / "devnet" / ".state"
DEVNET_EVM_XPUB = (
    "xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh5"
    "GFZaM6si3yZdUsT8ddYM3PwnATt"
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

    def __init__(self, base_env: Mapping[str, str], services: list[ServiceSpec], log_dir: Path):
        self.base_env = dict(base_env)
        self.services = services
        self.log_dir = log_dir
        self.running: dict[str, Running] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def env_for(self, spec: ServiceSpec) -> dict[str, str]:
        env = {**os.environ, **self.base_env, **spec.env}
        env["DATABASE_SCHEMA"] = spec.schema
        env["HTTP_PORT"] = str(spec.port)
        return env

    def cli(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        spec = self.spec(name)
        return subprocess.run(
            [spec.command, *args],
            env=self.env_for(spec),
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
            [spec.command, "serve"], env=self.env_for(spec), stdout=log, stderr=log
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


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_dependencies(database_url: str, rabbitmq_url: str) -> list[str]:
    """Problems with PostgreSQL or RabbitMQ, each with how to fix it (empty when fine)."""
    problems = []
    for label, url, default_port, how in (
        ("PostgreSQL", database_url, 5432, "start it: pg_ctlcluster 15 main start"),
        ("RabbitMQ", rabbitmq_url, 5672, "start it: rabbitmq-server -detached"),
    ):
        parsed = urlparse(url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
        try:
            socket.create_connection((host, port), timeout=2).close()
        except OSError as exc:
            problems.append(f"{label} is not reachable at {host}:{port} ({exc}); {how}")
    return problems


def standard_services(
    *, rpc_url: str, schema_prefix: str = "", ports: Mapping[str, int] | None = None
) -> list[ServiceSpec]:
    ports = dict(ports or {})
    return [
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
            {"RECONCILER_RPC_URLS": json.dumps({"ethereum": rpc_url})},
        ),
        ServiceSpec("dashboard", f"{schema_prefix}dashboard", ports.get("dashboard", 8103)),
    ]


@contextlib.contextmanager
def running_suite(suite: Suite) -> Iterator[Suite]:
    try:
        suite.migrate_all()
        suite.start_all()
        suite.wait_ready()
        yield suite
    finally:
        suite.stop_all()


def _run_local() -> int:
    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    rabbitmq_url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    problems = check_dependencies(database_url, rabbitmq_url)
    if problems:
        for problem in problems:
            print(f"stablegate: {problem}", file=sys.stderr)
        return 1
    subprocess.run([str(BIN / "python"), str(ROOT / "devnet" / "devnet.py"), "start"], check=True)
    chain = json.loads((DEVNET_STATE / "ethereum.json").read_text())
    base_env = {
        "DATABASE_URL": database_url,
        "RABBITMQ_URL": rabbitmq_url,
        "STABLEGATE_ASSETS_FILE": str(DEVNET_STATE / "assets.json"),
        "STABLEGATE_ENVIRONMENT": "development",
        "LOG_LEVEL": "INFO",
    }
    suite = Suite(base_env, standard_services(rpc_url=chain["rpc_url"]), ROOT / ".state" / "logs")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with running_suite(suite):
        merchant = json.loads(suite.cli("gateway", "create-merchant", "--name", "Demo shop").stdout)
        key = merchant["secret_key"]
        api = suite.url("gateway")
        print(
            f"""
Stablegate is running (logs in {suite.log_dir}).
  API         {api}/v1   (OpenAPI: {api}/docs)
  demo key    {key}   (shown once; merchant {merchant["merchant_id"]})
  dashboard   {suite.url("dashboard")}
  chain       {chain["rpc_url"]} (anvil, chain id {chain["chain_id"]})

Create a payment intent:
  curl -s {api}/v1/payment_intents -H 'Authorization: Bearer {key}' \\
    -H 'Content-Type: application/json' \\
    -d '{{"amount": "25.00", "currency": "USDT", "network": "ethereum"}}'

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["run"])
    parser.parse_args()
    return _run_local()


if __name__ == "__main__":
    raise SystemExit(main())
