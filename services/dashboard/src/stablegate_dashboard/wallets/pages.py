"""The wallets page: the deposit-address pool per network family, addresses in use with
their last activity, and balances per network, asset and merchant."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stablegate_dashboard.wallets import service
from stablegate_dashboard.web.context import Ctx
from stablegate_dashboard.web.session import User

router = APIRouter(include_in_schema=False)


@router.get("/wallets")
async def wallets_page(ctx: Ctx, request: Request, user: User) -> Response:
    now = datetime.now(UTC)
    cooldown = ctx.settings.dashboard.address_cooldown_seconds
    async with ctx.db.sessions() as session:
        pools = await service.pools(session, ctx.registry, cooldown_seconds=cooldown, now=now)
        addresses = await service.recent_addresses(session, cooldown_seconds=cooldown, now=now)
        totals = await service.balance_totals(session)
        balances = await service.balances(session)
    return ctx.pages.render(
        request,
        "wallets.html",
        nav="wallets",
        pools=pools,
        addresses=addresses,
        totals=totals,
        balances=balances,
        cooldown_seconds=cooldown,
    )
