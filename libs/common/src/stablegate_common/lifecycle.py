"""Run a service: its HTTP server and background loops in one process, stopped gracefully.

On SIGTERM or SIGINT the service reports not-ready, asks every loop to stop (they finish
the unit of work in hand), lets the HTTP server drain, then closes its resources. A loop
that crashes stops the whole process with a non-zero exit, so the supervisor restarts it
instead of leaving a half-working service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from stablegate_common.config import HttpSettings
from stablegate_common.http.health import Health
from stablegate_common.metrics import settle_heap

log = logging.getLogger(__name__)

Loop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the runner owns the signals
        yield


class ServiceRunner:
    def __init__(
        self,
        name: str,
        app: FastAPI,
        http: HttpSettings,
        health: Health,
        *,
        drain_seconds: float = 20.0,
    ) -> None:
        self.name = name
        self.app = app
        self.http = http
        self.health = health
        self.drain_seconds = drain_seconds
        self.stop = asyncio.Event()
        self._loops: list[tuple[str, Loop]] = []
        self._on_start: list[Callable[[], Awaitable[None]]] = []
        self._on_shutdown: list[Callable[[], Awaitable[None]]] = []

    def add_loop(self, name: str, loop: Loop) -> None:
        self._loops.append((name, loop))

    def on_start(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._on_start.append(callback)

    def on_shutdown(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Callbacks run in reverse order of registration, after the loops have stopped."""
        self._on_shutdown.append(callback)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, sig)
        exit_code = 0
        try:
            for start in self._on_start:
                await start()
            settle_heap()
            server = _Server(
                uvicorn.Config(
                    self.app,
                    host=self.http.host,
                    port=self.http.port,
                    log_config=None,
                    access_log=False,
                    timeout_graceful_shutdown=int(self.drain_seconds),
                    lifespan="off",
                )
            )
            tasks: dict[asyncio.Task[None], str] = {
                asyncio.create_task(body(self.stop), name=name): name for name, body in self._loops
            }
            sockets = (
                [listening_socket(self.http.host, self.http.port)] if self.http.reuse_port else None
            )
            server_task = asyncio.create_task(server.serve(sockets=sockets), name="http")
            log.info("service started", extra={"port": self.http.port})
            stop_task = asyncio.create_task(self.stop.wait())
            done, _ = await asyncio.wait(
                {*tasks, server_task, stop_task}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is not stop_task and not task.cancelled() and task.exception():
                    log.error(
                        "component crashed, stopping",
                        exc_info=task.exception(),
                        extra={"component": task.get_name()},
                    )
                    exit_code = 1
            self.health.shutting_down = True
            self.stop.set()
            await self._await_loops(tasks)
            server.should_exit = True
            await asyncio.wait({server_task}, timeout=self.drain_seconds + 5)
        finally:
            for callback in reversed(self._on_shutdown):
                try:
                    await callback()
                except Exception:
                    log.exception("shutdown step failed")
            log.info("service stopped", extra={"exit_code": exit_code})
        return exit_code

    async def _await_loops(self, tasks: dict[asyncio.Task[None], str]) -> None:
        pending = [t for t in tasks if not t.done()]
        if not pending:
            return
        _, still = await asyncio.wait(pending, timeout=self.drain_seconds)
        for task in still:
            log.warning("loop did not stop in time, cancelling", extra={"loop": tasks[task]})
            task.cancel()
        await asyncio.gather(*still, return_exceptions=True)

    def _request_stop(self, sig: signal.Signals) -> None:
        log.info("stop requested", extra={"signal": sig.name})
        self.health.shutting_down = True
        self.stop.set()


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; return True when stop was requested meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


def listening_socket(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket with SO_REUSEPORT: processes that each bind one on the same
    address share it, the kernel spreading new connections over them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
