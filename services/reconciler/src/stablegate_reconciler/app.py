"""Wiring of the reconciler process: database, bus consumers, outbox relay, the
reconciliation schedule, chain readers and the HTTP surface (health and metrics only)."""

from __future__ import annotations

import asyncio
import logging
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

from stablegate_common.bus import OUTBOX_WRITTEN, Bus, OutboxRelay
from stablegate_common.chains.provider_pools import evm_pool, tron_pool
from stablegate_common.config import ConfigurationError
from stablegate_common.core.assets import AssetRegistry
from stablegate_common.core.errors import UnknownNetwork
from stablegate_common.db import Database
from stablegate_common.http.health import Health
from stablegate_common.lifecycle import ServiceRunner, sleep_or_stop
from stablegate_common.metrics import service_info
from stablegate_common.scheduling import Scheduler
from stablegate_reconciler.ledger.consumers import start_consumers
from stablegate_reconciler.reconciliation.chain import BalanceReader
from stablegate_reconciler.reconciliation.jobs import JOB_NAME, ReconciliationJob
from stablegate_reconciler.settings import ReconcilerSettings

SERVICE = "reconciler"

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("stablegate-reconciler")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def build_readers(
    settings: ReconcilerSettings, registry: AssetRegistry
) -> dict[str, BalanceReader]:
    """One provider pool per network that has RPC URLs (JSON-RPC for EVM networks, the
    java-tron HTTP API for Tron), the same pool the watchers scan through: a balance at a
    block is read only from a provider whose head has reached it. Refuse networks the
    registry does not know."""
    concern = settings.reconciler
    readers: dict[str, BalanceReader] = {}
    for network, endpoints in sorted(concern.rpc_urls.items()):
        try:
            family = registry.network(network).family
            policy = concern.pool_policy(network)
        except UnknownNetwork as exc:
            raise ConfigurationError(f"RECONCILER_RPC_URLS: {exc.message}") from exc
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        timeout = concern.rpc_timeout_seconds
        # Tron: the java-tron HTTP API URL; a past block reads the solidified state.
        readers[network] = (
            tron_pool(network, endpoints, [], policy, timeout_seconds=timeout)
            if family == "tron"
            else evm_pool(network, endpoints, policy, timeout_seconds=timeout, poa=network == "bsc")
        )
    return readers


def build_service(settings: ReconcilerSettings) -> ServiceRunner:
    registry = settings.asset_registry()
    db = Database(settings.database, application_name=f"stablegate-{SERVICE}")
    bus = Bus(settings.bus, service=SERVICE)
    relay = OutboxRelay(db, bus)
    db.after_commit(relay.kick, only_if=OUTBOX_WRITTEN)
    readers = build_readers(settings, registry)
    job = ReconciliationJob(
        db,
        registry,
        readers,
        concurrency=settings.reconciler.concurrency,
        batch_size=settings.reconciler.batch_size,
        in_flight_grace_seconds=settings.reconciler.in_flight_grace_seconds,
    )
    scheduler = Scheduler(settings.database, db, service=SERVICE)
    scheduler.add_interval_job(JOB_NAME, job, settings.reconciler.interval_seconds)

    health = Health()
    health.add_check("database", db.ping)
    health.add_check("bus", bus.ping)
    app = FastAPI(title="stablegate-reconciler", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(health.router())
    service_info(SERVICE, _version())

    runner = ServiceRunner(SERVICE, app, settings.http, health)

    async def start() -> None:
        await bus.connect()
        await start_consumers(bus, db, registry)
        scheduler.start()

    async def keep_gauge_fresh(stop: asyncio.Event) -> None:
        # Every replica reports the open discrepancies, not only the one that ran the job.
        while True:
            try:
                await job.refresh_gauge()
            except (SQLAlchemyError, OSError) as exc:  # /readyz reports the database
                log.warning("discrepancy gauge not refreshed", extra={"error": repr(exc)})
            if await sleep_or_stop(stop, settings.reconciler.interval_seconds):
                return

    async def close_readers() -> None:
        for reader in readers.values():
            await reader.close()

    runner.on_start(start)
    runner.add_loop("outbox-relay", relay.run)
    runner.add_loop("discrepancy-gauge", keep_gauge_fresh)
    # Shutdown runs in reverse: stop the schedule, drain consumers, then close the rest.
    runner.on_shutdown(db.dispose)
    runner.on_shutdown(close_readers)
    runner.on_shutdown(bus.close)
    runner.on_shutdown(scheduler.shutdown)
    return runner
