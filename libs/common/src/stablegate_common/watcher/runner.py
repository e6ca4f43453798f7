"""The scanning loop around a `WatcherEngine`: start-up checks, the scanner lease (one
replica scans, the others stand by), pacing, error back-off, and the readiness the
service reports on `/readyz`.

Node and database failures are expected and retried with back-off; the loop reports them
through metrics and readiness. A misconfiguration found at start (token decimals, chain
id, a chain other than the one the cursor counts on) raises out of `run()`, which stops
the service with the message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from stablegate_common.chains import ChainError, RangeTooLarge
from stablegate_common.lifecycle import sleep_or_stop
from stablegate_common.metrics import time_block
from stablegate_common.watcher import metrics
from stablegate_common.watcher.engine import WatcherEngine
from stablegate_common.watcher.lease import ScannerLease
from stablegate_common.watcher.repository import CursorMoved

log = logging.getLogger(__name__)

# Failures a tick may hit that the next tick can outlive.
_TRANSIENT = (ChainError, SQLAlchemyError, OSError, TimeoutError, CursorMoved)


class Tracker(Protocol):
    """Work done by the scanner lock's holder after its scans (`txtrack.OutgoingTxTracker`)."""

    async def tick(self) -> int: ...


class WatcherNotReady(Exception):
    """Raised by the readiness check; the message says why."""


class ScannerLoop:
    def __init__(self, engine: WatcherEngine, trackers: Sequence[Tracker] = ()) -> None:
        self.engine = engine
        self.trackers = tuple(trackers)
        self._next_track = 0.0
        self.config = engine.config
        self.name = engine.name
        self.verified = False
        self.is_leader = False
        self.last_success_at: float | None = None  # time.monotonic()
        self._leading_since: float | None = None
        self.consecutive_errors = 0
        self.last_error: str | None = None
        self.node_failing = False
        self._lease = ScannerLease(engine.db.engine, f"watcher:{engine.db.schema}:{engine.name}")

    # -- the loop ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await self._verify(stop)
        while not stop.is_set():
            try:
                acquired = await self._lease.acquire()
            except (SQLAlchemyError, OSError) as exc:
                self._failed(exc)
                await sleep_or_stop(stop, self._backoff())
                continue
            if not acquired:
                await sleep_or_stop(stop, self.config.standby_poll_seconds)
                continue
            try:
                await self._lead(stop)
            finally:
                self._step_down()
                await self._lease.release()

    async def _verify(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.engine.verify_chain()
            except (ChainError, SQLAlchemyError, OSError) as exc:
                self._failed(exc)
                await sleep_or_stop(stop, self._backoff())
                continue
            self.verified = True
            self._clear_errors()
            return

    async def _lead(self, stop: asyncio.Event) -> None:
        self.is_leader = True
        self._leading_since = time.monotonic()
        metrics.LEADER.labels(self.name).set(1)
        log.info("scanner lock taken", extra={"network": self.name})
        resumed = False
        while not stop.is_set():
            if not await self._lease.alive():
                return
            try:
                if not resumed:
                    await self.engine.resume()
                    resumed = True
                with time_block(metrics.TICK_SECONDS, network=self.name):
                    behind = await self.engine.tick()
            except _TRANSIENT as exc:
                self._failed(exc)
                resumed = resumed and not isinstance(exc, CursorMoved)
                await sleep_or_stop(stop, self._backoff())
                continue
            self._succeeded()
            await self._track()
            if behind:
                await asyncio.sleep(0)  # let the HTTP server and consumers run
            else:
                await sleep_or_stop(stop, self.config.poll_interval_seconds)

    async def _track(self) -> None:
        """Run the trackers at most once per poll interval (also while catching up); their
        failures are logged and retried next time, never held against the scan."""
        if not self.trackers or time.monotonic() < self._next_track:
            return
        self._next_track = time.monotonic() + self.config.poll_interval_seconds
        for tracker in self.trackers:
            try:
                await tracker.tick()
            except _TRANSIENT as exc:
                log.warning(
                    "tracking outgoing transactions failed, retrying",
                    extra={"network": self.name, "error": f"{type(exc).__name__}: {exc}"[:300]},
                )

    def _step_down(self) -> None:
        if self.is_leader:
            log.info("scanner lock released", extra={"network": self.name})
        self.is_leader = False
        metrics.LEADER.labels(self.name).set(0)

    # -- bookkeeping -------------------------------------------------------------------

    def _succeeded(self) -> None:
        self.last_success_at = time.monotonic()
        self._clear_errors()

    def _clear_errors(self) -> None:
        self.consecutive_errors = 0
        self.last_error = None
        self.node_failing = False

    def _failed(self, exc: BaseException) -> None:
        self.consecutive_errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if isinstance(exc, ChainError):
            metrics.NODE_ERRORS.labels(self.name, exc.code).inc()
            # A refused window is the adaptive window working, not an unreachable node.
            self.node_failing = not isinstance(exc, RangeTooLarge)
        log.warning(
            "scan failed, retrying",
            extra={
                "network": self.name,
                "error": self.last_error,
                "consecutive_errors": self.consecutive_errors,
            },
        )

    def _backoff(self) -> float:
        doublings: int = min(max(0, self.consecutive_errors - 1), 8)
        delay = self.config.poll_interval_seconds * (1 << doublings)
        return min(self.config.max_error_backoff_seconds, delay)

    # -- readiness ---------------------------------------------------------------------

    async def check_ready(self) -> None:
        """Not ready while the node fails, before the first scan, or when scans stalled.

        A standby replica has no scans of its own; it is ready when the node answers, so
        it can take over.
        """
        if not self.verified:
            raise WatcherNotReady(f"start-up checks pending: {self.last_error or 'running'}")
        if self.node_failing:
            raise WatcherNotReady(f"node failing: {self.last_error}")
        if not self.is_leader:
            await self.engine.client.head()
            return
        # A scanner that just took the lock has until `stale_seconds` for its first scan.
        since = self.last_success_at or self._leading_since or time.monotonic()
        idle = time.monotonic() - since
        if idle > self.config.stale_seconds:
            raise WatcherNotReady(
                f"no scan succeeded for {idle:.0f}s (last error: {self.last_error})"
            )
