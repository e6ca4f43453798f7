"""ServiceRunner with HTTP_REUSE_PORT: several processes (here two runners) of one service
listen on the same port and the kernel spreads connections over them."""

from __future__ import annotations

import asyncio
import signal
import socket

import httpx
import pytest
from fastapi import FastAPI

from stablegate_common.config import HttpSettings
from stablegate_common.http.health import Health
from stablegate_common.lifecycle import ServiceRunner, listening_socket


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _runner(name: str, port: int) -> ServiceRunner:
    app = FastAPI()

    @app.get("/who")
    async def who() -> dict[str, str]:
        return {"name": name}

    http = HttpSettings(port=port, reuse_port=True)
    return ServiceRunner(name, app, http, Health(), drain_seconds=1)


async def test_two_runners_share_one_port_and_both_serve() -> None:
    port = _free_port()
    runners = [_runner("one", port), _runner("two", port)]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        seen: set[str] = set()
        for _ in range(200):
            # A new connection each time: the kernel picks a listener per connection.
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                try:
                    seen.add((await client.get("/who")).json()["name"])
                except httpx.TransportError:
                    await asyncio.sleep(0.05)  # not listening yet
            if seen == {"one", "two"}:
                break
        assert seen == {"one", "two"}
    finally:
        for runner in runners:
            runner.stop.set()
        assert await asyncio.wait_for(asyncio.gather(*tasks), 20) == [0, 0]
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):  # the runners installed their own
            loop.remove_signal_handler(sig)


def test_without_reuse_port_a_second_bind_is_refused() -> None:
    port = _free_port()
    first = listening_socket("127.0.0.1", port)
    try:
        with socket.socket() as plain, pytest.raises(OSError, match="in use"):
            plain.bind(("127.0.0.1", port))
        second = listening_socket("127.0.0.1", port)  # with the option: accepted
        second.close()
    finally:
        first.close()
