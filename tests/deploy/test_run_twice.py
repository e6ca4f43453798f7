"""A second `make run` must not lose payments (issue 13, item 8).

`make run` starts fresh devnet chains (block 0 again) each time it starts the devnet
itself, while the suite's state lives on in PostgreSQL. This runs `scripts/suite.py run`
(what `make run` calls) twice, stopped in between with SIGINT the way a terminal's Ctrl-C
stops it, and pays an intent right after the second start: it must be credited.

The suite runs in a database and an exchange of its own, so it never touches what a real
`make run` left behind; it needs `make run`'s fixed ports and is skipped while they are
taken.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import aio_pika
import asyncpg
import httpx
import pytest
from scripts.suite import _queues_named

from tests.conftest import DATABASE_URL, RABBITMQ_URL, run_on_own_loop, unique

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
PORTS = (8545, 8546, 8090, 8000, 8101, 8102, 8103, 8104, 8105)
START_TIMEOUT = 300.0


def _taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


@pytest.fixture
def suite_env() -> Iterator[dict[str, str]]:
    busy = [port for port in PORTS if _taken(port)]
    if busy:
        pytest.skip(f"make run's ports are taken ({busy}): another make run is up")
    database = unique("sg_runtwice")
    exchange = unique("sg-runtwice")

    async def create() -> None:
        conn = await asyncpg.connect(DATABASE_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    async def drop() -> None:
        connection = await aio_pika.connect(RABBITMQ_URL)
        try:
            channel = await connection.channel()
            for queue in _queues_named(exchange + ".") or []:
                await channel.queue_delete(queue)
            for name in (exchange, f"{exchange}.dlx"):
                await channel.exchange_delete(name)
        finally:
            await connection.close()
        conn = await asyncpg.connect(DATABASE_URL)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()

    run_on_own_loop(create())
    env = {
        **os.environ,
        "DATABASE_URL": _with_database(DATABASE_URL, database),
        "RABBITMQ_URL": RABBITMQ_URL,
        "RABBITMQ_EXCHANGE": exchange,
    }
    try:
        yield env
    finally:
        run_on_own_loop(drop())


class MakeRun:
    """`scripts/suite.py run` in a session of its own, as `make run` starts it."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [str(PYTHON), str(ROOT / "scripts" / "suite.py"), "run"],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_running(self) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if "Stablegate is running" in self.log.read_text(errors="replace"):
                demo: dict[str, Any] = json.loads((ROOT / ".state" / "demo.json").read_text())
                return demo
            if self.process.poll() is not None:
                pytest.fail(f"make run exited ({self.process.returncode}):\n{self.tail()}")
            time.sleep(0.2)
        pytest.fail(f"make run not up after {START_TIMEOUT}s:\n{self.tail()}")

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the terminal's foreground group, which holds the supervisor
        (each service and the devnet are in groups of their own)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            raise

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _wait_for(check: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def _create_intent(api: httpx.Client) -> dict[str, Any]:
    body = {"amount": "25.00", "currency": "USDT", "network": "ethereum"}
    response = api.post("/v1/payment_intents", json=body)
    assert response.status_code in (200, 201), response.text
    intent: dict[str, Any] = response.json()
    return intent


def _pay(address: str) -> None:
    pay = ["pay", "--network", "ethereum", "--to", address, "--amount", "25"]
    subprocess.run(
        [str(PYTHON), "devnet/devnet.py", *pay],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )


def _scanned_block() -> int:
    text = httpx.get("http://127.0.0.1:8101/metrics", timeout=5).text
    match = re.search(r'^stablegate_watcher_scanned_block\{network="ethereum"\} (\S+)', text, re.M)
    return int(float(match.group(1))) if match else -1


def _paid_and_booked(api: httpx.Client, intent_id: str) -> bool:
    if api.get(f"/v1/payment_intents/{intent_id}").json()["status"] != "paid":
        return False
    balances = api.get("/v1/balances").json()["data"]
    mine = [b for b in balances if b["network"] == "ethereum" and b["asset"] == "USDT"]
    return bool(mine) and mine[0]["amount_base_units"] == "25000000"


def _client(demo: dict[str, Any]) -> httpx.Client:
    headers = {"Authorization": f"Bearer {demo['secret_key']}"}
    return httpx.Client(base_url=demo["api"], headers=headers, timeout=15)


@pytest.mark.timeout(1200)
def test_a_payment_right_after_a_second_make_run_is_credited(
    suite_env: dict[str, str], tmp_path: Path
) -> None:
    first = MakeRun(suite_env, tmp_path / "first.log")
    try:
        demo = first.wait_running()
        with _client(demo) as api:
            intent = _create_intent(api)
            _pay(intent["deposit_address"])
            _wait_for(lambda: _paid_and_booked(api, intent["id"]), "the first run's payment")
        # A while of use: the cursor well above where a fresh chain's first payments land.
        httpx.post(
            "http://127.0.0.1:8545",
            json={"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": ["0x12c"]},
            timeout=30,
        ).raise_for_status()
        _wait_for(lambda: _scanned_block() >= 300, "the watcher to scan the mined blocks")
    finally:
        first.interrupt()

    second = MakeRun(suite_env, tmp_path / "second.log")
    try:
        demo = second.wait_running()
        with _client(demo) as api:
            intent = _create_intent(api)  # at once, as a new user's first curl
            _pay(intent["deposit_address"])
            _wait_for(
                lambda: _paid_and_booked(api, intent["id"]),
                "the payment made right after the second start",
                timeout=120,
            )
            transfers = api.get(f"/v1/payment_intents/{intent['id']}").json()["transfers"]
            assert [t["amount_base_units"] for t in transfers] == ["25000000"]
    finally:
        second.interrupt()
