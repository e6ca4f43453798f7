"""Wiring of the dashboard process: database, the consumers that build the read models,
the gateway client it acts through, and the HTTP surface (pages, static files, live
stream, JSON, health and metrics)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from stablegate_common.auth import JwtSigner
from stablegate_common.bus import Bus, SessionHandler, idempotent
from stablegate_common.db import Database
from stablegate_common.http.health import Health
from stablegate_common.lifecycle import ServiceRunner
from stablegate_common.metrics import service_info
from stablegate_dashboard import errors
from stablegate_dashboard.chain_heads import consumers as chain_heads
from stablegate_dashboard.disbursements import pages as disbursement_pages
from stablegate_dashboard.gateway_api import GatewayApi, GatewayOpsApi
from stablegate_dashboard.intents import api as intents_api
from stablegate_dashboard.intents import consumers as intents
from stablegate_dashboard.intents import pages as intent_pages
from stablegate_dashboard.live import api as live_api
from stablegate_dashboard.outgoing import pages as outgoing_pages
from stablegate_dashboard.overview import pages as overview_pages
from stablegate_dashboard.reconciliation import consumers as reconciliation
from stablegate_dashboard.reconciliation import pages as reconciliation_pages
from stablegate_dashboard.settings import DashboardSettings
from stablegate_dashboard.system import pages as system_pages
from stablegate_dashboard.system.probes import SystemProbe
from stablegate_dashboard.transfers import consumers as transfers
from stablegate_dashboard.transfers import pages as transfer_pages
from stablegate_dashboard.users import pages as user_pages
from stablegate_dashboard.wallets import consumers as wallets
from stablegate_dashboard.wallets import pages as wallet_pages
from stablegate_dashboard.web import security
from stablegate_dashboard.web.context import DashboardContext
from stablegate_dashboard.web.templating import Pages
from stablegate_dashboard.webhooks import pages as webhook_pages

SERVICE = "dashboard"
STATIC = Path(__file__).parent / "static"
JWT_ISSUER = JWT_AUDIENCE = "stablegate-dashboard"

# (consumer name, routing keys, handler): one queue per read model, so a slow or failing
# model never holds up the others.
CONSUMERS: tuple[tuple[str, tuple[str, ...], SessionHandler], ...] = (
    (intents.CONSUMER, intents.ROUTING_KEYS, intents.on_intent_event),
    (transfers.CONSUMER, transfers.ROUTING_KEYS, transfers.on_transfer_event),
    (chain_heads.CONSUMER, chain_heads.ROUTING_KEYS, chain_heads.on_chain_head),
    (wallets.ADDRESSES_CONSUMER, wallets.ADDRESSES_ROUTING_KEYS, wallets.on_address_event),
    (wallets.BALANCES_CONSUMER, wallets.BALANCES_ROUTING_KEYS, wallets.on_balance_event),
    (reconciliation.CONSUMER, reconciliation.ROUTING_KEYS, reconciliation.on_reconciliation_event),
)
PAGE_ROUTERS = (
    user_pages.router,
    overview_pages.router,
    intent_pages.router,
    transfer_pages.router,
    wallet_pages.router,
    disbursement_pages.router,  # before outgoing's: /outgoing/{batch_id} would match its path
    outgoing_pages.router,
    reconciliation_pages.router,
    webhook_pages.router,
    system_pages.router,
    live_api.router,
)


def _version() -> str:
    try:
        return version("stablegate-dashboard")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def build_context(
    settings: DashboardSettings,
    db: Database,
    health: Health,
    *,
    gateway_transport: httpx.AsyncBaseTransport | None = None,
    ops_transport: httpx.AsyncBaseTransport | None = None,
    probe_transport: httpx.AsyncBaseTransport | None = None,
) -> DashboardContext:
    config = settings.dashboard
    registry = settings.asset_registry()
    return DashboardContext(
        settings=settings,
        db=db,
        registry=registry,
        signer=JwtSigner(
            config.jwt_secret,
            issuer=JWT_ISSUER,
            audience=JWT_AUDIENCE,
            ttl_seconds=config.session_ttl_seconds,
        ),
        pages=Pages(registry, static_version=_version()),
        gateway=GatewayApi(
            config.gateway_url,
            config.gateway_api_key,
            timeout_seconds=config.gateway_timeout_seconds,
            transport=gateway_transport,
        ),
        ops=GatewayOpsApi(
            config.gateway_url,
            config.gateway_ops_token,
            timeout_seconds=config.gateway_timeout_seconds,
            transport=ops_transport,
        ),
        probe=SystemProbe(
            config.service_urls,
            settings.bus,
            own_queues=[f"{settings.bus.exchange}.{SERVICE}.{name}" for name, _, _ in CONSUMERS],
            transport=probe_transport,
        ),
        health=health,
    )


def build_app(ctx: DashboardContext) -> FastAPI:
    app = FastAPI(title="stablegate-dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.dashboard = ctx
    app.include_router(ctx.health.router())
    app.include_router(intents_api.router(ctx.db))
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    errors.install(app)
    security.install(app)
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
    ctx = build_context(settings, db, health)
    runner = ServiceRunner(SERVICE, build_app(ctx), settings.http, health)

    async def start() -> None:
        await bus.connect()
        await start_consumers(bus, db)

    runner.on_start(start)
    runner.on_shutdown(db.dispose)
    runner.on_shutdown(ctx.gateway.close)
    runner.on_shutdown(ctx.ops.close)
    runner.on_shutdown(bus.close)  # runs first: in-flight events finish while the DB is up
    return runner
