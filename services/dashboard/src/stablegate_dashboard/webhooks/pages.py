"""`/webhooks`: endpoints, recent deliveries and failures; admins redeliver.

Read through the gateway's API with the dashboard's key, so the page shows the
deliveries of that key's merchant (see settings.py).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from stablegate_common.core.errors import DomainError
from stablegate_dashboard.gateway_api import GatewayApi, GatewayRefused, GatewayUnavailable
from stablegate_dashboard.web.context import Ctx
from stablegate_dashboard.web.notices import outcome_url
from stablegate_dashboard.web.session import Admin, User

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


async def endpoints_with_deliveries(gateway: GatewayApi) -> list[dict[str, Any]]:
    endpoints = await gateway.list_endpoints()
    deliveries = await asyncio.gather(*(gateway.list_deliveries(e["id"]) for e in endpoints))
    return [
        {"endpoint": endpoint, "deliveries": found}
        for endpoint, found in zip(endpoints, deliveries, strict=True)
    ]


def is_failure(delivery: dict[str, Any]) -> bool:
    code = delivery.get("last_status_code")
    failed_attempt = delivery.get("last_error") or (isinstance(code, int) and code >= 300)
    return delivery.get("status") == "failed" or bool(
        delivery.get("status") == "pending" and failed_attempt
    )


@router.get("/webhooks")
async def webhooks_page(ctx: Ctx, request: Request, user: User) -> Response:
    error: str | None = None
    listed: list[dict[str, Any]] = []
    try:
        listed = await endpoints_with_deliveries(ctx.gateway)
    except DomainError as exc:
        error = exc.message
    failures = [
        {"endpoint": item["endpoint"], "delivery": d}
        for item in listed
        for d in item["deliveries"]
        if is_failure(d)
    ]
    return ctx.pages.render(
        request,
        "webhooks.html",
        nav="webhooks",
        listed=listed,
        failures=failures,
        error=error,
        action_key=secrets.token_urlsafe(16),
    )


@router.post("/webhooks/deliveries/{delivery_id}/redeliver")
async def redeliver(ctx: Ctx, request: Request, principal: Admin, delivery_id: str) -> Response:
    form = await request.form()
    key = str(form.get("action_key") or secrets.token_urlsafe(16))[:64]
    try:
        await ctx.gateway.redeliver(delivery_id, idempotency_key=f"dashboard-redeliver-{key}")
    except (GatewayUnavailable, GatewayRefused) as exc:
        log.warning(
            "redelivery through the gateway failed",
            extra={"delivery": delivery_id, "user": principal.user_id, "code": exc.code},
        )
        return RedirectResponse(outcome_url("/webhooks", failed=exc.code), status_code=303)
    log.info(
        "webhook redelivered from the dashboard",
        extra={"delivery": delivery_id, "user": principal.user_id},
    )
    return RedirectResponse(outcome_url("/webhooks", notice="redelivered"), status_code=303)
