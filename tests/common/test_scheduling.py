"""The scheduler against the real PostgreSQL: persisted jobs, the advisory lock that keeps
replicas from running a job twice at once, failures that do not stop the scheduler, and
two real replica processes sharing one job store."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from stablegate_common import scheduling
from stablegate_common.config import DatabaseSettings
from stablegate_common.db import Database
from stablegate_common.scheduling import Scheduler

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def db(db_settings: DatabaseSettings) -> AsyncIterator[Database]:
    database = Database(db_settings)
    async with database.engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{db_settings.schema_name}"'))
    yield database
    await database.dispose()


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_interval_job_runs_on_its_interval_and_is_persisted(
    db: Database, db_settings: DatabaseSettings
) -> None:
    service = db_settings.schema_name
    runs: list[float] = []

    async def tick() -> None:
        runs.append(time.monotonic())

    scheduler = Scheduler(db_settings, db, service=service)
    scheduler.add_interval_job("tick", tick, 0.3)
    scheduler.start()
    try:
        await _wait_until(lambda: len(runs) >= 3)
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(f'SELECT id, next_run_time FROM "{service}".apscheduler_jobs')
                )
            ).all()
    finally:
        await scheduler.shutdown()
    assert [r.id for r in rows] == ["tick"]
    assert rows[0].next_run_time > time.time() - 5
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert all(gap > 0.15 for gap in gaps), gaps  # on the interval, not in a tight loop
    assert (
        _sample("stablegate_job_runs_total", service=service, job_name="tick", outcome="success")
        >= 3
    )
    assert _sample("stablegate_job_duration_seconds_count", service=service, job_name="tick") >= 3


async def test_a_failing_job_is_recorded_and_the_scheduler_keeps_going(
    db: Database, db_settings: DatabaseSettings, caplog: pytest.LogCaptureFixture
) -> None:
    service = db_settings.schema_name
    calls: list[int] = []

    async def flaky() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("node unreachable")

    healthy: list[int] = []

    async def other() -> None:
        healthy.append(1)

    scheduler = Scheduler(db_settings, db, service=service)
    scheduler.add_interval_job("flaky", flaky, 0.2)
    scheduler.add_interval_job("other", other, 0.2)
    with caplog.at_level(logging.ERROR, logger="stablegate_common.scheduling"):
        scheduler.start()
        try:
            await _wait_until(lambda: len(calls) >= 3 and len(healthy) >= 3)
        finally:
            await scheduler.shutdown()
    failed = [r for r in caplog.records if r.getMessage() == "job failed"]
    assert len(failed) == 1
    assert failed[0].job == "flaky"  # type: ignore[attr-defined]
    assert failed[0].exc_info is not None
    assert "node unreachable" in str(failed[0].exc_info[1])
    labels = {"service": service, "job_name": "flaky"}
    assert _sample("stablegate_job_runs_total", **labels, outcome="failure") == 1
    assert _sample("stablegate_job_runs_total", **labels, outcome="success") >= 2


async def test_run_now_skips_while_another_session_holds_the_lock(
    db: Database, db_settings: DatabaseSettings
) -> None:
    """Another replica is simulated by a separate PostgreSQL session taking the same key."""
    service = db_settings.schema_name
    calls: list[int] = []

    async def body() -> None:
        calls.append(1)

    scheduler = Scheduler(db_settings, db, service=service)
    scheduler.add_interval_job("sweep", body, 60)
    key = {"key": f"job:{db_settings.schema_name}:sweep"}
    assert scheduler.lock_key("sweep") == key["key"]
    other_replica = await db.engine.connect()
    try:
        await other_replica.execute(text("SELECT pg_advisory_lock(hashtext(:key))"), key)
        assert await scheduler.run_now("sweep") == "skipped"
        assert calls == []
        skipped = _sample("stablegate_job_skipped_locked_total", service=service, job_name="sweep")
        assert skipped == 1
        await other_replica.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), key)
        assert await scheduler.run_now("sweep") == "success"
        assert calls == [1]
        # The run released its lock: the other session can take it again.
        relocked = await other_replica.execute(
            text("SELECT pg_try_advisory_lock(hashtext(:key))"), key
        )
        assert relocked.scalar_one() is True
    finally:
        await other_replica.invalidate()  # ends the session and any lock it still holds
        await other_replica.close()
        await scheduler.shutdown()


async def test_overlapping_runs_in_one_process_are_excluded_too(
    db: Database, db_settings: DatabaseSettings
) -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await release.wait()

    scheduler = Scheduler(db_settings, db, service=db_settings.schema_name)
    scheduler.add_interval_job("slow", slow, 60)
    try:
        first = asyncio.create_task(scheduler.run_now("slow"))
        await asyncio.wait_for(started.wait(), 5)
        assert await asyncio.wait_for(scheduler.run_now("slow"), 5) == "skipped"
        release.set()
        assert await first == "success"
    finally:
        release.set()
        await scheduler.shutdown()


async def test_lock_is_released_when_the_body_fails(
    db: Database, db_settings: DatabaseSettings
) -> None:
    async def broken() -> None:
        raise ValueError("bad row")

    scheduler = Scheduler(db_settings, db, service=db_settings.schema_name)
    scheduler.add_interval_job("broken", broken, 60)
    try:
        assert await scheduler.run_now("broken") == "failure"
        assert await scheduler.run_now("broken") == "failure"  # not "skipped": lock was freed
    finally:
        await scheduler.shutdown()


async def test_shutdown_waits_for_the_run_in_progress(
    db: Database, db_settings: DatabaseSettings
) -> None:
    events: list[str] = []

    async def work() -> None:
        events.append("started")
        await asyncio.sleep(0.5)
        events.append("finished")

    scheduler = Scheduler(db_settings, db, service=db_settings.schema_name)
    scheduler.add_interval_job("work", work, 0.2)
    scheduler.start()
    await _wait_until(lambda: "started" in events)
    await scheduler.shutdown()
    assert events == ["started", "finished"]
    # After shutdown nothing fires any more, and the name is free for a new Scheduler.
    await asyncio.sleep(0.5)
    assert events == ["started", "finished"]
    again = Scheduler(db_settings, db, service=db_settings.schema_name)
    again.add_interval_job("work", work, 0.2)
    assert await again.run_now("work") == "success"
    await again.shutdown()


async def test_registration_mistakes_are_refused(
    db: Database, db_settings: DatabaseSettings
) -> None:
    async def body() -> None:
        return None

    first = Scheduler(db_settings, db, service=db_settings.schema_name)
    second = Scheduler(db_settings, db, service=db_settings.schema_name)
    first.add_interval_job("job", body, 10)
    try:
        with pytest.raises(ValueError, match="already registered by another Scheduler"):
            second.add_interval_job("job", body, 10)
        with pytest.raises(ValueError, match="interval must be positive"):
            first.add_interval_job("zero", body, 0)
        with pytest.raises(LookupError, match="no job 'missing'"):
            await first.run_now("missing")
    finally:
        await first.shutdown()
        await second.shutdown()
    with pytest.raises(ValueError, match="DATABASE_SCHEMA"):
        Scheduler(DatabaseSettings(DATABASE_SCHEMA=""), db, service="x")


async def test_a_stored_job_unknown_to_this_process_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="stablegate_common.scheduling"):
        await scheduling._run_registered("nobody", "retired_job")
    assert any("not registered here" in r.getMessage() for r in caplog.records)


# --- two replicas, two processes, one job store ---------------------------------------------

REPLICA = r"""
import asyncio, json, sys, time
from sqlalchemy import text
from prometheus_client import REGISTRY
from stablegate_common.config import DatabaseSettings
from stablegate_common.db import Database
from stablegate_common.scheduling import Scheduler

url, schema, replica, duration = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

async def main():
    settings = DatabaseSettings(url=url, DATABASE_SCHEMA=schema, pool_size=4)
    db = Database(settings)

    def job(name, seconds):
        async def body():
            async with db.transaction() as s:
                await s.execute(text(
                    "UPDATE gauge SET current = current + 1, peak = greatest(peak, current + 1)"
                    " WHERE job = :job"), {"job": name})
                await s.execute(text(
                    "INSERT INTO runs (job, replica, started_at)"
                    " VALUES (:job, :r, clock_timestamp())"),
                    {"job": name, "r": replica})
            try:
                await asyncio.sleep(seconds)
            finally:
                async with db.transaction() as s:
                    await s.execute(text(
                        "UPDATE gauge SET current = current - 1 WHERE job = :job"), {"job": name})
        return body

    scheduler = Scheduler(settings, db, service="replicas")
    scheduler.add_interval_job("slow", job("slow", 0.8), 0.5)   # body outlasts the interval
    scheduler.add_interval_job("tick", job("tick", 0.3), 1.0)
    scheduler.start()
    async with db.transaction() as s:
        await s.execute(text(
            "INSERT INTO replicas (replica, started_at) VALUES (:r, clock_timestamp())"),
            {"r": replica})
    await asyncio.sleep(duration)
    async with db.transaction() as s:
        await s.execute(text(
            "UPDATE replicas SET stopping_at = clock_timestamp() WHERE replica = :r"),
            {"r": replica})
    await scheduler.shutdown()
    await db.dispose()
    skips = {j: REGISTRY.get_sample_value("stablegate_job_skipped_locked_total",
             {"service": "replicas", "job_name": j}) or 0 for j in ("slow", "tick")}
    print(json.dumps({"replica": replica, "lock_skips": skips}))

asyncio.run(main())
"""

SCHEMA_SQL = [
    "CREATE TABLE gauge (job text PRIMARY KEY, current int NOT NULL, peak int NOT NULL)",
    "INSERT INTO gauge VALUES ('slow', 0, 0), ('tick', 0, 0)",
    "CREATE TABLE runs (id serial PRIMARY KEY, job text, replica text, started_at timestamptz)",
    "CREATE TABLE replicas (replica text PRIMARY KEY, started_at timestamptz,"
    " stopping_at timestamptz)",
]


async def _replica(settings: DatabaseSettings, name: str, duration: float) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        REPLICA,
        settings.url.get_secret_value(),
        settings.schema_name,
        name,
        str(duration),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), duration + 60)
    assert proc.returncode == 0, err.decode()[-3000:]
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def test_two_replicas_run_each_tick_once_and_never_concurrently(
    db: Database, db_settings: DatabaseSettings
) -> None:
    async with db.transaction() as session:
        for statement in SCHEMA_SQL:
            await session.execute(text(statement))
    duration = 7.0
    results = await asyncio.gather(
        _replica(db_settings, "a", duration), _replica(db_settings, "b", duration)
    )
    async with db.transaction() as session:
        peaks = {r.job: r.peak for r in await session.execute(text("SELECT job, peak FROM gauge"))}
        window = (
            await session.execute(text("SELECT max(started_at), min(stopping_at) FROM replicas"))
        ).one()
        # Count "tick" runs once both replicas have (re)written the job and its schedule settled.
        ticks_in_window = (
            await session.execute(
                text(
                    "SELECT count(*) FROM runs WHERE job = 'tick'"
                    " AND started_at > :start AND started_at < :end"
                ),
                {"start": window[0] + timedelta(seconds=1), "end": window[1]},
            )
        ).scalar_one()
        runs_by_replica: dict[str, int] = {
            r[0]: r[1]
            for r in await session.execute(
                text("SELECT replica, count(*) FROM runs GROUP BY replica")
            )
        }
    lock_skips = sum(sum(r["lock_skips"].values()) for r in results)
    window_seconds = (window[1] - window[0]).total_seconds() - 1.0
    print(
        f"peaks={peaks} runs_by_replica={runs_by_replica} lock_skips={lock_skips} "
        f"tick_runs={ticks_in_window} in {window_seconds:.1f}s"
    )
    assert peaks == {"slow": 1, "tick": 1}
    assert sum(runs_by_replica.values()) >= 6  # the jobs did run
    assert lock_skips >= 1  # the replicas did contend, so the lock was exercised
    assert window_seconds > 2
    assert ticks_in_window <= int(window_seconds / 1.0) + 1
