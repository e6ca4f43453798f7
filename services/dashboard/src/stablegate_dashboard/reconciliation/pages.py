"""The reconciliation page: recent runs, open discrepancies and recently resolved ones."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stablegate_common.core.errors import UnknownAsset, UnknownNetwork
from stablegate_dashboard.reconciliation import service
from stablegate_dashboard.web.context import Ctx
from stablegate_dashboard.web.session import User

router = APIRouter(include_in_schema=False)


@router.get("/reconciliation")
async def reconciliation_page(ctx: Ctx, request: Request, user: User) -> Response:
    async with ctx.db.sessions() as session:
        runs = await service.recent_runs(session, limit=15)
        open_ones = await service.discrepancies(session, status="open")
        resolved = await service.discrepancies(session, status="resolved", limit=20)

    def decimals(network: str, asset: str) -> int | None:
        try:
            return ctx.registry.asset(network, asset).decimals
        except (UnknownNetwork, UnknownAsset):
            return None

    return ctx.pages.render(
        request,
        "reconciliation.html",
        nav="reconciliation",
        runs=runs,
        open_discrepancies=open_ones,
        resolved=resolved,
        decimals=decimals,
    )
