"""Running a service as the real process: `migrate`, then `serve` on a free port with its
configuration in environment variables, stopped with SIGTERM like a supervisor would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from stablegate_common.config import BusSettings, DatabaseSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(
    db: DatabaseSettings, bus: BusSettings, port: int, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": db.url.get_secret_value(),
            "DATABASE_SCHEMA": db.schema_name,
            "RABBITMQ_URL": bus.url.get_secret_value(),
            "RABBITMQ_EXCHANGE": bus.exchange,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(port),
            "LOG_JSON": "true",
            "STABLEGATE_ENVIRONMENT": "test",
        }
    )
    env.update(extra or {})
    return env


async def run_command(module: str, command: str, env: Mapping[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, command, env=dict(env), stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, f"{module} {command} failed:\n{stderr.decode()[-3000:]}"


@dataclass
class Served:
    url: str
    log_path: Path
    exit_code: int | None = None

    def log_lines(self) -> list[dict[str, object]]:
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


@asynccontextmanager
async def serving(
    module: str, env: Mapping[str, str], log_path: Path, *, ready_timeout: float = 60.0
) -> AsyncIterator[Served]:
    """`python -m <module> serve` until the block ends; then SIGTERM and wait for exit."""
    url = f"http://127.0.0.1:{env['HTTP_PORT']}"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, "serve", env=dict(env), stdout=log, stderr=log
        )
    served = Served(url, log_path)
    try:
        await _wait_ready(url, process, log_path, ready_timeout)
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=45)
            except TimeoutError:
                process.kill()
                await process.wait()
        served.exit_code = process.returncode


async def _wait_ready(
    url: str, process: asyncio.subprocess.Process, log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise AssertionError(f"service exited early:\n{log_path.read_text()[-3000:]}")
            try:
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"service not ready in {timeout}s:\n{log_path.read_text()[-3000:]}")
