"""Assembling the gateway: the FastAPI application (`create_app`) and the whole process
(`build_service`): database, bus, outbox relay, consumers, address pool, health checks.

The payments side (transfer consumers, webhook delivery, scheduled jobs, webhook and
event routes) plugs in through `stablegate_gateway.payments_wiring`: `routers()` for its
HTTP routes and `register(runner, ctx, bus)` for its loops and consumers.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import get_args

from fastapi import APIRouter, FastAPI

from stablegate_common.bus import OUTBOX_WRITTEN, Bus, OutboxRelay, SessionHandler, idempotent
from stablegate_common.config import ConfigurationError
from stablegate_common.core.assets import Family
from stablegate_common.db import Database
from stablegate_common.http.health import Health
from stablegate_common.lifecycle import ServiceRunner
from stablegate_gateway import payments_wiring
from stablegate_gateway.addresses.service import ensure_pool
from stablegate_gateway.api.errors import install_error_handlers
from stablegate_gateway.api.middleware import RequestContextMiddleware
from stablegate_gateway.api.openapi import document_conventions
from stablegate_gateway.balances import api as balances_api
from stablegate_gateway.balances import consumers as balances_consumers
from stablegate_gateway.checkout import api as checkout_api
from stablegate_gateway.context import SERVICE, GatewayContext
from stablegate_gateway.disbursements import ops_api as disbursements_ops_api
from stablegate_gateway.events import api as events_api
from stablegate_gateway.idempotency.middleware import IdempotencyMiddleware
from stablegate_gateway.intents import api as intents_api
from stablegate_gateway.merchants import api as merchants_api
from stablegate_gateway.networks import api as networks_api
from stablegate_gateway.networks import consumers as networks_consumers
from stablegate_gateway.outgoing import api as outgoing_api  # funds out: the ops API
from stablegate_gateway.settings import GatewaySettings
from stablegate_gateway.webhooks.service import DELIVERIES_QUEUED

MIN_PEPPER_BYTES = 16  # what `stablegate_common.auth.hash_api_key` accepts

API_DESCRIPTION = """\
Accept USDT and USDC on Ethereum, BNB Smart Chain and Tron.

Conventions follow Stripe's: prefixed ids (`pi_…`), amounts as decimal strings, cursor
pagination (`limit`, `starting_after`, `ending_before`), errors as
`{"error": {"type", "code", "message", "param", "request_id"}}`, and a `Request-Id`
header on every response. Authenticate with `Authorization: Bearer <secret API key>` or
with a short-lived token from `POST /v1/auth/token`.
"""

OPENAPI_TAGS = [
    {"name": "Payment intents", "description": "What a merchant asks to be paid, and its state."},
    {"name": "Networks", "description": "Supported networks, tokens and watcher health."},
    {"name": "Balances", "description": "Confirmed funds per network and asset."},
    {"name": "Events", "description": "Everything webhooks deliver, kept for catching up."},
    {"name": "Webhooks", "description": "Endpoints that receive signed events."},
    {"name": "Authentication", "description": "Short-lived tokens in place of the API key."},
]


@dataclass(frozen=True)
class Consumer:
    name: str
    routing_keys: Sequence[str]
    handler: SessionHandler


CONSUMERS: tuple[Consumer, ...] = (
    Consumer(
        networks_consumers.CONSUMER,
        networks_consumers.ROUTING_KEYS,
        networks_consumers.on_chain_head,
    ),
    Consumer(
        balances_consumers.CONSUMER,
        balances_consumers.ROUTING_KEYS,
        balances_consumers.on_balance_updated,
    ),
)


def create_app(ctx: GatewayContext, *, health: Health | None = None) -> FastAPI:
    app = FastAPI(
        title="Stablegate API",
        version="1",
        description=API_DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(RequestContextMiddleware)  # added last, so outermost: sees every response
    document_conventions(app)
    routers: list[APIRouter] = [
        intents_api.router,
        networks_api.router,
        balances_api.router,
        events_api.router,
        merchants_api.router,
        *payments_wiring.routers(),
        checkout_api.router,
        outgoing_api.router,  # funds out: /ops/v1/outgoing (404 unless GATEWAY_OPS_TOKEN)
        disbursements_ops_api.router,  # /ops/v1/disbursements: the same token
    ]
    for router in routers:
        app.include_router(router)
    if health is None:
        health = Health()
        health.add_check("database", ctx.db.ping)
    app.include_router(health.router())
    return app


def build_context(settings: GatewaySettings) -> GatewayContext:
    """The context of a running service; refuses to start without a usable EVM xpub."""
    if not settings.gateway.evm_xpub.strip():
        raise ConfigurationError(
            "GATEWAY_EVM_XPUB is not set: configure the account-level xpub (m/44'/60'/0') "
            "that deposit addresses are derived from"
        )
    ctx = GatewayContext(
        settings=settings,
        registry=settings.asset_registry(),
        db=Database(settings.database, application_name=f"stablegate-{SERVICE}"),
    )
    for family in get_args(Family):
        ctx.deriver(family)  # raises ConfigurationError now rather than on a request
    ctx.pricing  # noqa: B018 - builds the rate feed and fee inputs, or raises ConfigurationError
    _check_secrets(ctx)
    return ctx


def _check_secrets(ctx: GatewayContext) -> None:
    """Short secrets fail at start, not as a 500 on the first authenticated request."""
    try:
        ctx.jwt  # noqa: B018 - building the signer checks the secret
    except ValueError as exc:
        raise ConfigurationError(f"GATEWAY_JWT_SECRET: {exc}") from exc
    if len(ctx.api_key_pepper) < MIN_PEPPER_BYTES:
        raise ConfigurationError(
            f"GATEWAY_API_KEY_PEPPER must be at least {MIN_PEPPER_BYTES} bytes"
        )


def build_service(settings: GatewaySettings) -> ServiceRunner:
    """The gateway process. API requests and background work (consumers, webhook workers,
    the relay, jobs) use two connection pools, so neither can starve the other."""
    api = build_context(settings)
    # One process derives address batches (spawned: no forked copy of this one's threads);
    # set before `using`, so the background context shares it.
    derivation = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    api.derivation_pool = derivation
    background = api.using(
        Database(
            settings.database.model_copy(
                update={"pool_size": settings.gateway.background_pool_size, "max_overflow": 0}
            ),
            application_name=f"stablegate-{SERVICE}-background",
        )
    )
    bus = Bus(settings.bus, service=SERVICE)
    relay = OutboxRelay(background.db, bus)
    health = Health()
    health.add_check("database", api.db.ping)
    health.add_check("bus", bus.ping)
    runner = ServiceRunner(SERVICE, create_app(api, health=health), settings.http, health)
    runner.on_shutdown(api.db.dispose)  # shutdown runs in reverse: the bus closes first
    runner.on_shutdown(background.db.dispose)
    runner.on_shutdown(bus.close)
    runner.on_shutdown(api.pricing.close)

    async def stop_derivation() -> None:
        await asyncio.to_thread(derivation.shutdown, cancel_futures=True)

    runner.on_shutdown(stop_derivation)
    runner.on_start(bus.connect)

    async def provision_pools() -> None:
        await provision_address_pools(background)

    async def start_consumers() -> None:
        await consume(background.db, bus, CONSUMERS)

    runner.on_start(provision_pools)
    runner.on_start(start_consumers)
    runner.add_loop("outbox-relay", relay.run)
    payments = payments_wiring.register(runner, background, bus)
    # A commit on either pool that queued events or webhooks wakes the loop that sends
    # them (`register` hooked the webhook worker to the background pool already).
    for db in (api.db, background.db):
        db.after_commit(relay.kick, only_if=OUTBOX_WRITTEN)
    api.db.after_commit(payments.worker.kick, only_if=DELIVERIES_QUEUED)
    return runner


async def provision_address_pools(ctx: GatewayContext) -> None:
    """Derive the pool ahead of need before serving, one transaction per family."""
    for family in get_args(Family):
        async with ctx.db.transaction() as session:
            await ensure_pool(session, ctx, family)


async def consume(db: Database, bus: Bus, consumers: Sequence[Consumer]) -> None:
    for consumer in consumers:
        await bus.consume(
            consumer.name, consumer.routing_keys, idempotent(db, consumer.name, consumer.handler)
        )
