"""Periodic jobs: APScheduler 3 with its job store in the service's own PostgreSQL schema.

Every replica of a service runs a scheduler over the same job store, and APScheduler 3 has
no coordination between schedulers, so two replicas can fire the same tick. Each run
therefore takes a PostgreSQL advisory lock keyed by schema and job name on a connection
of its own; a replica that cannot take it skips the run. The lock gives mutual exclusion,
not exactly-once: a job body must be safe to run again (it is, in this system: sweeps,
retries and reconciliations look at the current state).

The job store persists a textual reference to an importable function plus pickled
arguments, never a closure. Every job is stored as `_run_registered(service, name)`, and
each process maps `(service, name)` to the body it registered when it built its Scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Literal

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import Counter, Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from stablegate_common.config import DatabaseSettings
from stablegate_common.db import Database
from stablegate_common.metrics import time_block

log = logging.getLogger(__name__)

JobBody = Callable[[], Awaitable[None]]
JobOutcome = Literal["success", "failure", "skipped"]

JOB_TABLE = "apscheduler_jobs"
_JOB_FUNC = "stablegate_common.scheduling:_run_registered"

# `job_name`, not `job`: Prometheus attaches its own `job` label to every scraped series.
JOB_RUNS = Counter(
    "stablegate_job_runs_total",
    "Periodic job runs by outcome (success or failure)",
    ["service", "job_name", "outcome"],
)
JOB_DURATION = Histogram(
    "stablegate_job_duration_seconds",
    "Wall time of periodic job runs",
    ["service", "job_name"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
JOB_LOCK_SKIPS = Counter(
    "stablegate_job_skipped_locked_total",
    "Periodic job runs skipped because another replica held the job's lock",
    ["service", "job_name"],
)


@dataclass(frozen=True)
class _Registration:
    scheduler: Scheduler
    body: JobBody


_registry: dict[tuple[str, str], _Registration] = {}


async def _run_registered(service: str, name: str) -> None:
    """What the job store calls for every job; dispatches to this process's registered body."""
    registration = _registry.get((service, name))
    if registration is None:
        # A row written by a newer (or older) release that this process does not know.
        log.warning("job is in the store but not registered here", extra={"job": name})
        return
    await registration.scheduler.run_now(name)


class Scheduler:
    """One service's periodic jobs, persisted in `<schema>.apscheduler_jobs`.

    Build it, `add_interval_job(...)` for every job, `start()` inside the running event loop,
    and `await shutdown()` when the service stops.
    """

    def __init__(self, db_settings: DatabaseSettings, db: Database, *, service: str) -> None:
        if not db_settings.schema_name:
            raise ValueError("DATABASE_SCHEMA must name the service schema for the job store")
        self.service = service
        self.schema = db_settings.schema_name
        self._db = db
        self._bodies: dict[str, JobBody] = {}
        self._running: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._store = SQLAlchemyJobStore(
            url=db_settings.sync_url(),
            tableschema=self.schema,
            tablename=JOB_TABLE,
            engine_options={
                "pool_pre_ping": True,
                "pool_size": 1,
                "max_overflow": 1,
                "connect_args": {"application_name": f"stablegate-{service}-scheduler"},
            },
        )
        self._scheduler = AsyncIOScheduler(jobstores={"default": self._store}, timezone=UTC)

    def add_interval_job(
        self,
        name: str,
        body: JobBody,
        seconds: float,
        *,
        jitter: float | None = None,
        misfire_grace_time: int | None = None,
    ) -> None:
        """Run `body` every `seconds` on one replica at a time.

        A run that is late by more than `misfire_grace_time` (default: one interval) is
        dropped, since the next tick is then due anyway; missed runs are coalesced into one.
        """
        if not name or len(name) > 191:
            raise ValueError("a job name must be 1 to 191 characters")
        if seconds <= 0:
            raise ValueError(f"job {name!r}: the interval must be positive")
        key = (self.service, name)
        owner = _registry.get(key)
        if owner is not None and owner.scheduler is not self:
            raise ValueError(
                f"job {name!r} of {self.service!r} is already registered by another "
                "Scheduler in this process"
            )
        _registry[key] = _Registration(self, body)
        self._bodies[name] = body
        self._scheduler.add_job(
            _JOB_FUNC,
            trigger=IntervalTrigger(seconds=seconds, jitter=jitter, timezone=UTC),
            args=(self.service, name),
            id=name,
            name=name,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=misfire_grace_time or max(1, math.ceil(seconds)),
        )

    def start(self) -> None:
        """Start firing jobs; call from inside the running event loop."""
        self._create_job_table()
        self._stopping = False
        self._scheduler.start()

    async def shutdown(self, drain_seconds: float = 30.0) -> None:
        """Stop firing, wait up to `drain_seconds` for runs in progress, release the store."""
        self._stopping = True
        if self._scheduler.running:
            self._scheduler.pause()
        current = asyncio.current_task()
        running = {t for t in self._running if not t.done() and t is not current}
        if running:
            _, late = await asyncio.wait(running, timeout=drain_seconds)
            if late:
                log.warning(
                    "jobs still running at shutdown are cancelled", extra={"count": len(late)}
                )
        if self._scheduler.running:
            # AsyncIOScheduler defers its shutdown to a later loop iteration; wait for it so
            # the job store's engine is disposed before this returns.
            stopped = asyncio.Event()
            self._scheduler.add_listener(lambda _: stopped.set(), EVENT_SCHEDULER_SHUTDOWN)
            self._scheduler.shutdown(wait=False)
            await stopped.wait()
        for name in self._bodies:
            registration = _registry.get((self.service, name))
            if registration is not None and registration.scheduler is self:
                del _registry[(self.service, name)]

    async def run_now(self, name: str) -> JobOutcome:
        """Run one job now under its lock (what every tick does; also for tests and CLIs)."""
        body = self._bodies.get(name)
        if body is None:
            raise LookupError(f"no job {name!r} is registered for {self.service}")
        if self._stopping:
            log.debug("job not started: shutting down", extra={"job": name})
            return "skipped"
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            return await self._run_locked(name, body)
        finally:
            if task is not None:
                self._running.discard(task)

    def lock_key(self, name: str) -> str:
        """The text hashed into the job's advisory lock key (`hashtext` in PostgreSQL)."""
        return f"job:{self.schema}:{name}"

    async def _run_locked(self, name: str, body: JobBody) -> JobOutcome:
        key = self.lock_key(name)
        async with self._db.engine.connect() as conn:
            result = await conn.execute(
                text("SELECT pg_try_advisory_lock(hashtext(:key))"), {"key": key}
            )
            locked = bool(result.scalar_one())
            # Session-level lock: end the transaction so the connection does not sit idle in
            # a transaction for as long as the job runs.
            await conn.commit()
            if not locked:
                log.debug("job skipped: another replica holds its lock", extra={"job": name})
                JOB_LOCK_SKIPS.labels(self.service, name).inc()
                return "skipped"
            try:
                return await self._run_body(name, body)
            finally:
                await _unlock(conn, key)

    async def _run_body(self, name: str, body: JobBody) -> JobOutcome:
        outcome: JobOutcome = "failure"
        try:
            with time_block(JOB_DURATION, service=self.service, job_name=name):
                await body()
            outcome = "success"
        except Exception:
            # A failing run is counted and logged; the scheduler keeps firing the next ticks.
            log.exception("job failed", extra={"job": name})
        JOB_RUNS.labels(self.service, name, outcome).inc()
        return outcome

    def _create_job_table(self) -> None:
        # Replicas starting together on a fresh schema would race on CREATE TABLE inside
        # APScheduler's own check-then-create; serialise it with a transaction-level lock.
        with self._store.engine.begin() as conn:
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"jobstore:{self.schema}"},
            )
            self._store.jobs_t.create(conn, checkfirst=True)


async def _unlock(conn: AsyncConnection, key: str) -> None:
    try:
        await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": key})
        await conn.commit()
    except BaseException as exc:
        # Also on cancellation: a pooled connection that still held the lock would block the
        # job on every replica. Closing the session releases every lock it holds.
        log.warning("advisory unlock failed; discarding the connection", exc_info=True)
        await conn.invalidate()
        if not isinstance(exc, Exception):
            raise
