"""Payment-intent pages: search and filters with pagination, the detail page (timeline,
transfers with explorer links) and the admin action to cancel through the gateway."""

from __future__ import annotations

import logging
import secrets
from typing import get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from stablegate_common.events.contracts import IntentStatus
from stablegate_dashboard.gateway_api import GatewayRefused, GatewayUnavailable
from stablegate_dashboard.intents import repository, service
from stablegate_dashboard.intents.repository import IntentFilter
from stablegate_dashboard.web.context import Ctx
from stablegate_dashboard.web.notices import outcome_url
from stablegate_dashboard.web.session import Admin, User

log = logging.getLogger(__name__)

STATUSES = tuple(get_args(IntentStatus))

router = APIRouter(include_in_schema=False)


def choice(value: str | None, allowed: tuple[str, ...] | list[str]) -> str | None:
    """A filter value from the URL, or None when it is not one of the known values."""
    return value if value in allowed else None


@router.get("/intents")
async def intents_page(
    ctx: Ctx,
    request: Request,
    user: User,
    q: str | None = None,
    status: str | None = None,
    network: str | None = None,
    asset: str | None = None,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> Response:
    assets = sorted({a.symbol for n in ctx.registry for a in n.assets})
    wanted = IntentFilter(
        query=(q or "").strip()[:200] or None,
        status=choice(status, STATUSES),
        network=choice(network, ctx.registry.names()),
        asset=choice(asset, assets),
    )
    async with ctx.db.sessions() as session:
        page = await repository.search(
            session, wanted, starting_after=starting_after, ending_before=ending_before
        )
        live_after = await repository.latest_position(session)
    return ctx.pages.render(
        request,
        "intents.html",
        nav="intents",
        page=page,
        wanted=wanted,
        statuses=STATUSES,
        networks=ctx.registry.names(),
        assets=assets,
        live_after=live_after,
        query=urlencode(
            {
                k: v
                for k, v in (
                    ("q", wanted.query),
                    ("status", wanted.status),
                    ("network", wanted.network),
                    ("asset", wanted.asset),
                )
                if v
            }
        ),
    )


@router.get("/intents/{intent_id}")
async def intent_page(ctx: Ctx, request: Request, user: User, intent_id: str) -> Response:
    async with ctx.db.sessions() as session:
        detail = await service.intent_detail(session, intent_id)
        live_after = await repository.latest_position(session)
    intent = detail.intent
    return ctx.pages.render(
        request,
        "intent.html",
        nav="intents",
        detail=detail,
        intent=intent,
        remaining=max(0, intent.amount_base_units - intent.amount_confirmed_base_units),
        cancelable=intent.status == "awaiting_payment" and intent.amount_received_base_units == 0,
        gateway_ready=ctx.gateway.configured,
        action_key=secrets.token_urlsafe(16),
        live_after=live_after,
    )


@router.post("/intents/{intent_id}/cancel")
async def cancel_intent(ctx: Ctx, request: Request, principal: Admin, intent_id: str) -> Response:
    form = await request.form()
    key = str(form.get("action_key") or secrets.token_urlsafe(16))[:64]
    target = f"/intents/{intent_id}"
    try:
        await ctx.gateway.cancel_intent(intent_id, idempotency_key=f"dashboard-cancel-{key}")
    except (GatewayUnavailable, GatewayRefused) as exc:
        log.warning(
            "cancel through the gateway failed",
            extra={"intent": intent_id, "user": principal.user_id, "code": exc.code},
        )
        return RedirectResponse(outcome_url(target, failed=exc.code), status_code=303)
    log.info(
        "intent canceled from the dashboard", extra={"intent": intent_id, "user": principal.user_id}
    )
    return RedirectResponse(outcome_url(target, notice="canceled"), status_code=303)
