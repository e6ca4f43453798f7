"""The services under test as separate processes, as `make run` starts them
(`scripts/suite.py`), in schemas and a RabbitMQ exchange of the benchmark's own; a local
webhook receiver that timestamps what arrives; and the CPU time of a process.

Nothing here is shared with a developer's `make run`: the schemas are prefixed
`bench_<random>_`, the exchange is `stablegate.bench_<random>`, the ports are free ones,
and everything is dropped on the way out.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiohttp import web
from scripts.suite import Suite, drop_suite, free_port, standard_services

from bench.common import DATABASE_URL, RABBITMQ_URL

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class BenchSuite:
    suite: Suite
    prefix: str
    exchange: str
    merchant_id: str
    secret_key: str

    def url(self, name: str) -> str:
        return str(self.suite.url(name))

    replicas: dict[str, list[subprocess.Popen[bytes]]] = field(default_factory=dict)

    def pid(self, name: str) -> int:
        return int(self.suite.running[name].process.pid)

    def pids(self, name: str) -> list[int]:
        """The service's process and its extra replicas."""
        return [self.pid(name), *(p.pid for p in self.replicas.get(name, []))]

    def add_replicas(self, name: str, count: int, *, timeout: float = 60.0) -> None:
        """Start `count` more processes of a service that was started with
        HTTP_REUSE_PORT=true: they share its port, the kernel spreading connections."""
        spec = self.suite.spec(name)
        env = {**self.suite.env_for(spec), "LOG_LEVEL": "INFO"}
        for number in range(count):
            log_path = self.suite.log_dir / f"{name}-replica-{number + 1}.log"
            with log_path.open("ab") as log:  # the child keeps its own copy of the handle
                process = subprocess.Popen(
                    [spec.command, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
                )
            self.replicas.setdefault(name, []).append(process)
            deadline = time.monotonic() + timeout
            while b"service started" not in log_path.read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} replica did not start: see {log_path}")
                time.sleep(0.2)

    def stop_replicas(self) -> None:
        for processes in self.replicas.values():
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.replicas.clear()

    def api(self, *, connections: int = 100, timeout: float = 30.0) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(
            base_url=self.url("gateway"),
            headers={"Authorization": f"Bearer {self.secret_key}"},
            timeout=timeout,
            limits=limits,
        )

    async def execute(self, sql: str) -> None:
        """Run SQL statements (no parameters, several allowed) in one implicit transaction."""
        conn = await asyncpg.connect(DATABASE_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def query(self, schema: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(DATABASE_URL)
        try:
            await conn.execute(f'SET search_path TO "{self.prefix}{schema}"')
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


@contextlib.asynccontextmanager
async def running_suite(
    name: str,
    *,
    services: Sequence[str],
    rpc_url: str,
    assets_file: Path | None,
    env: Mapping[str, Mapping[str, str]] | None = None,
    log_dir: Path,
    ready_timeout: float = 180.0,
) -> AsyncIterator[BenchSuite]:
    """Start `services` (names as in scripts/suite.py) with a merchant; stop and drop
    everything on exit. `env` adds variables per service name ("*" for all)."""
    prefix = f"bench_{secrets.token_hex(3)}_"
    exchange = f"stablegate.{prefix.rstrip('_')}"
    extra = dict(env or {})
    base_env = {
        "DATABASE_URL": DATABASE_URL,
        "RABBITMQ_URL": RABBITMQ_URL,
        "RABBITMQ_EXCHANGE": exchange,
        "STABLEGATE_ENVIRONMENT": "development",
        "LOG_LEVEL": "WARNING",
        **extra.get("*", {}),
    }
    if assets_file is not None:
        base_env["STABLEGATE_ASSETS_FILE"] = str(assets_file)
    names = ("gateway", "watcher-eth", "reconciler", "dashboard")
    specs = standard_services(
        rpc_url=rpc_url, schema_prefix=prefix, ports={n: free_port() for n in names}
    )
    specs = [spec for spec in specs if spec.name in services]
    for spec in specs:
        spec.env.update(extra.get(spec.name, {}))
    suite = Suite(base_env, specs, log_dir / name)
    try:
        suite.migrate_all()
        merchant = json.loads(suite.cli("gateway", "create-merchant", "--name", "Bench").stdout)
        suite.start_all()
        suite.wait_ready(timeout=ready_timeout)
        bench = BenchSuite(suite, prefix, exchange, merchant["merchant_id"], merchant["secret_key"])
        try:
            yield bench
        finally:
            bench.stop_replicas()
    finally:
        suite.stop_all()
        await drop_suite(DATABASE_URL, RABBITMQ_URL, schema_prefix=prefix, exchange=exchange)


# -- a webhook receiver ----------------------------------------------------------------------


@dataclass
class Arrival:
    at: float  # time.monotonic() on arrival
    event_id: str
    event_type: str
    object_id: str


@dataclass
class WebhookReceiver:
    """Accepts every POST at `url` and keeps (time, event id, type, object id)."""

    url: str
    arrivals: list[Arrival] = field(default_factory=list)

    def of_type(self, event_type: str) -> list[Arrival]:
        return [a for a in self.arrivals if a.event_type == event_type]


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    port = free_port()
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{port}/hooks")

    async def handle(request: web.Request) -> web.Response:
        at = time.monotonic()
        event = json.loads(await request.read())
        obj = event.get("data", {}).get("object", {})
        receiver.arrivals.append(Arrival(at, event["id"], event["type"], str(obj.get("id"))))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hooks", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield receiver
    finally:
        await runner.cleanup()


# -- CPU time --------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))
