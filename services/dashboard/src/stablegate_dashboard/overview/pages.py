"""`/`: the overview for the last 24 hours or 7 days."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stablegate_dashboard.intents import repository
from stablegate_dashboard.intents.repository import IntentFilter
from stablegate_dashboard.overview.service import PERIODS, overview
from stablegate_dashboard.reconciliation.service import open_count
from stablegate_dashboard.web.context import Ctx
from stablegate_dashboard.web.session import User

router = APIRouter(include_in_schema=False)


@router.get("/")
async def overview_page(ctx: Ctx, request: Request, user: User, period: str = "24h") -> Response:
    chosen = period if period in PERIODS else "24h"
    async with ctx.db.sessions() as session:
        figures = await overview(session, chosen, now=datetime.now(UTC))
        recent = await repository.search(session, IntentFilter(), limit=8)
        discrepancies = await open_count(session)
        live_after = await repository.latest_position(session)
    return ctx.pages.render(
        request,
        "overview.html",
        nav="overview",
        figures=figures,
        periods=list(PERIODS),
        recent=recent.items,
        open_discrepancies=discrepancies,
        live_after=live_after,
    )
