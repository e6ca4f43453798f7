"""Wiring of the dashboard process: database, the consumers that build the read models,
and the HTTP surface (health, metrics and the read-only JSON API of issue 2)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from stablegate_common.bus import Bus, SessionHandler, idempotent
from stablegate_common.db import Database
from stablegate_common.http.health import Health
from stablegate_common.lifecycle import ServiceRunner
from stablegate_common.metrics import service_info
from stablegate_dashboard import errors
from stablegate_dashboard.chain_heads import consumers as chain_heads
from stablegate_dashboard.intents import api as intents_api
from stablegate_dashboard.intents import consumers as intents
from stablegate_dashboard.settings import DashboardSettings
from stablegate_dashboard.transfers import consumers as transfers

SERVICE = "dashboard"

# (consumer name, routing keys, handler): one queue per read model, so a slow or failing
# model never holds up the others.
CONSUMERS: tuple[tuple[str, tuple[str, ...], SessionHandler], ...] = (
    (intents.CONSUMER, intents.ROUTING_KEYS, intents.on_intent_event),
    (transfers.CONSUMER, transfers.ROUTING_KEYS, transfers.on_transfer_event),
    (chain_heads.CONSUMER, chain_heads.ROUTING_KEYS, chain_heads.on_chain_head),
)


def _version() -> str:
    try:
        return version("stablegate-dashboard")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def build_app(db: Database, health: Health) -> FastAPI:
    app = FastAPI(title="stablegate-dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(health.router())
    app.include_router(intents_api.router(db))
    errors.install(app)
    return app


async def start_consumers(bus: Bus, db: Database) -> None:
    for name, keys, handler in CONSUMERS:
        await bus.consume(name, keys, idempotent(db, name, handler))


def build_service(settings: DashboardSettings) -> ServiceRunner:
    db = Database(settings.database, application_name=f"stablegate-{SERVICE}")
    bus = Bus(settings.bus, service=SERVICE)
    health = Health()
    health.add_check("database", db.ping)
    health.add_check("bus", bus.ping)
    service_info(SERVICE, _version())
    runner = ServiceRunner(SERVICE, build_app(db, health), settings.http, health)

    async def start() -> None:
        await bus.connect()
        await start_consumers(bus, db)

    runner.on_start(start)
    runner.on_shutdown(db.dispose)
    runner.on_shutdown(bus.close)  # runs first: in-flight events finish while the DB is up
    return runner
