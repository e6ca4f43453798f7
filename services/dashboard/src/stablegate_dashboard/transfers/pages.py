"""The transfers page: every Transfer log the watchers reported, attributed to an intent,
unsolicited, or ignored, with filters and pagination."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stablegate_dashboard.intents.pages import choice
from stablegate_dashboard.transfers.service import TransferFilter, list_transfers
from stablegate_dashboard.web.context import Ctx
from stablegate_dashboard.web.session import User

KINDS = ("attributed", "unsolicited", "ignored")
STATUSES = ("detected", "confirmed", "reverted")

router = APIRouter(include_in_schema=False)


@router.get("/transfers")
async def transfers_page(
    ctx: Ctx,
    request: Request,
    user: User,
    q: str | None = None,
    kind: str | None = None,
    network: str | None = None,
    status: str | None = None,
    starting_after: int | None = None,
    ending_before: int | None = None,
) -> Response:
    wanted = TransferFilter(
        kind=choice(kind, KINDS),
        network=choice(network, ctx.registry.names()),
        status=choice(status, STATUSES),
        query=(q or "").strip()[:200] or None,
    )
    async with ctx.db.sessions() as session:
        page = await list_transfers(
            session,
            ctx.registry,
            wanted,
            starting_after=starting_after,
            ending_before=ending_before,
        )
    return ctx.pages.render(
        request,
        "transfers.html",
        nav="transfers",
        page=page,
        wanted=wanted,
        kinds=KINDS,
        statuses=STATUSES,
        networks=ctx.registry.names(),
        query=urlencode(
            {
                k: v
                for k, v in (
                    ("q", wanted.query),
                    ("kind", wanted.kind),
                    ("status", wanted.status),
                    ("network", wanted.network),
                )
                if v
            }
        ),
    )
