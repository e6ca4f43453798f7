"""`/system`: each watcher's head and lag (read model), and live probes of the services
and RabbitMQ queues (system/probes.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from stablegate_dashboard.chain_heads.models import ChainHeadView
from stablegate_dashboard.system.probes import ServiceStatus
from stablegate_dashboard.web.context import Ctx, DashboardContext
from stablegate_dashboard.web.session import User

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Watcher:
    network: str
    head_block: int | None
    scanned_block: int | None
    lag_blocks: int | None
    reported_at: datetime | None
    state: str  # ok | lagging | stale | down (never reported)


def watchers(ctx: DashboardContext, heads: list[ChainHeadView], now: datetime) -> list[Watcher]:
    config = ctx.settings.dashboard
    by_network = {h.network: h for h in heads}
    found = []
    for network in sorted({*ctx.registry.names(), *by_network}):
        head = by_network.get(network)
        if head is None:
            found.append(Watcher(network, None, None, None, None, "down"))
            continue
        lag = max(0, head.head_block - head.scanned_block)
        silent = (now - head.updated_at).total_seconds()
        state = "ok"
        if silent > config.watcher_stale_seconds:
            state = "stale"
        elif lag > config.watcher_lag_blocks:
            state = "lagging"
        found.append(
            Watcher(network, head.head_block, head.scanned_block, lag, head.updated_at, state)
        )
    return found


async def own_status(ctx: DashboardContext) -> ServiceStatus:
    checks = await ctx.health.run_checks()
    ready = all(v == "ok" for v in checks.values())
    return ServiceStatus("dashboard", "(this process)", "ready" if ready else "not_ready", checks)


@router.get("/system")
async def system_page(ctx: Ctx, request: Request, user: User) -> Response:
    now = datetime.now(UTC)
    async with ctx.db.sessions() as session:
        heads = list(await session.scalars(select(ChainHeadView)))
    services = [await own_status(ctx), *await ctx.probe.services()]
    queues = await ctx.probe.queues(ctx.probe.queue_names(services))
    return ctx.pages.render(
        request,
        "system.html",
        nav="system",
        watchers=watchers(ctx, heads, now),
        services=services,
        queues=queues,
        configured=bool(ctx.probe.service_urls),
        exchange=ctx.settings.bus.exchange,
    )
