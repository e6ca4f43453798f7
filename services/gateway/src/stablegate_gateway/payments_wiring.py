"""Where the payments side plugs into the running gateway.

`app.create_app` includes `routers()`; `app.build_service` calls `register(runner, ctx,
bus)` after the bus, the outbox relay and the gateway's own consumers are set up. This
adds the `transfer.*` consumer, the webhook delivery worker (woken after every commit,
like the outbox relay) and the scheduled jobs (intent expiry, address-pool upkeep:
release of cooled addresses and top-up, housekeeping: idempotency keys and inbox, the
sweep round), and funds out: the `chain.tx.*` consumer, the broadcaster and the re-plan of
expired Tron sweeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import APIRouter

from stablegate_common.bus import Bus
from stablegate_common.lifecycle import ServiceRunner
from stablegate_common.scheduling import Scheduler
from stablegate_gateway.addresses.jobs import maintain_address_pool
from stablegate_gateway.context import SERVICE, GatewayContext
from stablegate_gateway.disbursements import api as disbursements_api
from stablegate_gateway.disbursements.planning import register_disbursement_job
from stablegate_gateway.housekeeping import housekeeping
from stablegate_gateway.intents import resolve_api
from stablegate_gateway.intents.jobs import expire_due_intents
from stablegate_gateway.outgoing.broadcaster import (
    DEFAULT_FINAL_DEPTH,
    Broadcaster,
    build_senders,
)
from stablegate_gateway.outgoing.consumers import consume_outgoing
from stablegate_gateway.outgoing.replan import TronReplan
from stablegate_gateway.outgoing.sweeps import register_sweep_job
from stablegate_gateway.transfers.consumers import consume_transfers
from stablegate_gateway.webhooks import api as webhooks_api
from stablegate_gateway.webhooks.delivery import WebhookDeliveryWorker
from stablegate_gateway.webhooks.service import DELIVERIES_QUEUED

EXPIRY_JOB = "expire-payment-intents"
ADDRESS_POOL_JOB = "maintain-address-pool"
HOUSEKEEPING_JOB = "housekeeping"


@dataclass(frozen=True)
class Payments:
    """What `register` built, for tests and the CLI to drive directly."""

    worker: WebhookDeliveryWorker
    scheduler: Scheduler
    broadcaster: Broadcaster
    replan: TronReplan


def routers() -> Sequence[APIRouter]:
    return (
        webhooks_api.router,
        resolve_api.router,
        disbursements_api.refunds,
        disbursements_api.payouts,
    )


def build_scheduler(ctx: GatewayContext) -> Scheduler:
    config = ctx.settings.gateway
    scheduler = Scheduler(ctx.settings.database, ctx.db, service=SERVICE)

    async def expire() -> None:
        await expire_due_intents(ctx)

    async def address_pool() -> None:
        await maintain_address_pool(ctx)

    async def clean_up() -> None:
        await housekeeping(ctx)

    scheduler.add_interval_job(EXPIRY_JOB, expire, config.expiry_job_seconds)
    scheduler.add_interval_job(ADDRESS_POOL_JOB, address_pool, config.address_job_seconds)
    scheduler.add_interval_job(HOUSEKEEPING_JOB, clean_up, config.housekeeping_job_seconds)
    # --- sweeps (issue 14): every GATEWAY_SWEEP_SCHEDULE_MINUTES, none when 0.
    register_sweep_job(scheduler, ctx)
    # --- end sweeps
    # Refunds and payouts: every GATEWAY_DISBURSEMENT_SCHEDULE_MINUTES, none when 0.
    register_disbursement_job(scheduler, ctx)
    return scheduler


def register(runner: ServiceRunner, ctx: GatewayContext, bus: Bus) -> Payments:
    worker = WebhookDeliveryWorker(ctx.db, ctx.settings.gateway)
    ctx.db.after_commit(worker.kick, only_if=DELIVERIES_QUEUED)
    scheduler = build_scheduler(ctx)
    broadcaster = build_broadcaster(ctx)
    replan = TronReplan(ctx)

    async def start() -> None:
        await consume_transfers(ctx, bus)
        await consume_outgoing(bus, ctx.db, replan.expired)
        scheduler.start()

    runner.on_start(start)
    runner.add_loop("webhook-delivery", worker.run)
    runner.add_loop("outgoing-broadcast", broadcaster.run)
    runner.add_loop("outgoing-replan", replan.run)
    # Shutdown callbacks run in reverse: these go before the bus and database close.
    runner.on_shutdown(broadcaster.close)
    runner.on_shutdown(worker.close)
    runner.on_shutdown(scheduler.shutdown)
    return Payments(worker, scheduler, broadcaster, replan)


def build_broadcaster(ctx: GatewayContext) -> Broadcaster:
    """Sends signed outgoing transactions (and re-sends the same bytes until mined) to
    each network's node (GATEWAY_RPC_URL_<NET> / GATEWAY_TRON_API_URL)."""
    sweeps, outgoing = ctx.settings.sweeps, ctx.settings.outgoing
    names = ctx.registry.names()
    return Broadcaster(
        ctx.db,
        build_senders(
            {name: sweeps.node_url(name) for name in names},
            timeout_seconds=sweeps.chain_timeout_seconds,
        ),
        rebroadcast_seconds=outgoing.outgoing_rebroadcast_seconds,
        stuck_seconds=outgoing.outgoing_stuck_seconds,
        native_symbols={name: ctx.registry.network(name).native_symbol for name in names},
        # The watcher's default reorg window: a nonce used deeper than that is final.
        final_depths={
            name: max(2 * ctx.confirmations_for(name), DEFAULT_FINAL_DEPTH) for name in names
        },
    )
