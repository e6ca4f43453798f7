"""`/outgoing/disbursements`: the refunds and payouts of every merchant, beside the
signing rounds that carry them.

Read from and done through the gateway's ops API, as the rest of Outgoing. Viewers see
the list; only admins approve one over its merchant's limit (the gateway records the
admin's user id, sent as `Ops-Actor`, and wants two different admins) and plan the
pending ones into signing rounds now. The round made then goes through download, sign
and upload on the batch's own page. A refusal from the gateway is shown with its own
reason on this page; a success redirects (post/redirect/get).
"""

from __future__ import annotations

import logging
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from stablegate_common.core.errors import DomainError, NotFound
from stablegate_dashboard.disbursements.service import (
    STATUSES,
    DisbursementRow,
    disbursement_row,
    is_disbursement_id,
    with_lookups,
)
from stablegate_dashboard.gateway_api import GatewayRefused, GatewayUnavailable
from stablegate_dashboard.intents import repository as intents
from stablegate_dashboard.outgoing.pages import (
    batches_made,
    chosen_network,
    form_action_key,
    ops_problem,
)
from stablegate_dashboard.outgoing.service import is_batch_id
from stablegate_dashboard.users import repository as users
from stablegate_dashboard.users.service import Principal
from stablegate_dashboard.web.context import Ctx, DashboardContext
from stablegate_dashboard.web.notices import outcome_url
from stablegate_dashboard.web.session import Admin, User

log = logging.getLogger(__name__)

LIMIT = 100
PAGE = "/outgoing/disbursements"

router = APIRouter(include_in_schema=False)


async def _rows(ctx: DashboardContext, listed: dict[str, object]) -> list[DisbursementRow]:
    data = listed.get("data")
    rows = [
        disbursement_row(d) for d in (data if isinstance(data, list) else []) if isinstance(d, dict)
    ]
    intent_ids = sorted({r.payment_intent for r in rows if r.payment_intent})
    approvers = sorted({a.by for r in rows for a in r.approvals})
    async with ctx.db.sessions() as session:
        known = await intents.known_ids(session, intent_ids)
        emails = await users.emails_of(session, approvers)
    return [with_lookups(r, known, emails) for r in rows]


async def _page(
    ctx: DashboardContext,
    request: Request,
    *,
    status: str | None = None,
    network: str | None = None,
    action_error: str | None = None,
    status_code: int = 200,
) -> Response:
    rows: list[DisbursementRow] = []
    problem: str | None = None
    if ctx.ops.configured:
        try:
            listed = await ctx.ops.list_disbursements(limit=LIMIT, status=status, network=network)
            rows = await _rows(ctx, listed)
        except DomainError as exc:
            problem = ops_problem(exc)
    return ctx.pages.render(
        request,
        "outgoing_disbursements.html",
        status_code=status_code,
        nav="outgoing",
        configured=ctx.ops.configured,
        problem=problem,
        action_error=action_error,
        rows=rows,
        limit=LIMIT,
        status_filter=status,
        network_filter=network,
        statuses=STATUSES,
        networks=ctx.registry.names(),
        action_key=secrets.token_urlsafe(16),
    )


async def _refused(
    ctx: DashboardContext,
    request: Request,
    principal: Principal,
    exc: GatewayRefused | GatewayUnavailable,
    *,
    action: str,
    disbursement_id: str | None,
) -> Response:
    log.warning(
        "refund or payout action refused",
        extra={
            "action": action,
            "disbursement": disbursement_id,
            "user": principal.user_id,
            "code": exc.code,
        },
    )
    status = 503 if isinstance(exc, GatewayUnavailable) else 422
    message = f"The gateway refused: {exc.message}" if status == 422 else ops_problem(exc)
    return await _page(ctx, request, action_error=message, status_code=status)


@router.get(PAGE)
async def disbursements_page(
    ctx: Ctx,
    request: Request,
    user: User,
    status: str | None = None,
    network: str | None = None,
) -> Response:
    # An unknown filter value shows everything rather than an error page.
    return await _page(
        ctx,
        request,
        status=status if status in STATUSES else None,
        network=network if network in ctx.registry.names() else None,
    )


@router.post(f"{PAGE}/plan")
async def plan_disbursements(ctx: Ctx, request: Request, principal: Admin) -> Response:
    form = await request.form()
    network = chosen_network(ctx, form)
    try:
        planned = await ctx.ops.plan_disbursements(
            network, idempotency_key=form_action_key(form, "disbursements")
        )
    except (GatewayRefused, GatewayUnavailable) as exc:
        return await _refused(ctx, request, principal, exc, action="plan", disbursement_id=None)
    batches = batches_made(planned)
    log.info(
        "refunds and payouts planned from the dashboard",
        extra={"network": network, "batches": len(batches), "user": principal.user_id},
    )
    if len(batches) == 1 and is_batch_id(str(batches[0].get("id", ""))):
        target = f"/outgoing/{batches[0]['id']}"
        return RedirectResponse(
            outcome_url(target, notice="disbursements_planned"), status_code=303
        )
    if batches:  # the new rounds head the list of signing rounds
        return RedirectResponse(
            outcome_url("/outgoing", notice="disbursements_planned"), status_code=303
        )
    return RedirectResponse(outcome_url(PAGE, notice="disbursements_nothing"), status_code=303)


@router.post(PAGE + "/{disbursement_id}/approve")
async def approve(ctx: Ctx, request: Request, principal: Admin, disbursement_id: str) -> Response:
    if not is_disbursement_id(disbursement_id):
        raise NotFound(f"No such refund or payout: {disbursement_id!r}", param="id")
    form = await request.form()
    try:
        approved = await ctx.ops.approve_disbursement(
            disbursement_id,
            actor=principal.user_id,
            idempotency_key=form_action_key(form, f"approve-{disbursement_id}"),
        )
    except (GatewayRefused, GatewayUnavailable) as exc:
        return await _refused(
            ctx, request, principal, exc, action="approve", disbursement_id=disbursement_id
        )
    log.info(
        "refund or payout approved from the dashboard",
        extra={"disbursement": disbursement_id, "user": principal.user_id},
    )
    notice = "approval_complete" if approved.get("approved") is True else "approval_recorded"
    return RedirectResponse(outcome_url(PAGE, notice=notice), status_code=303)
