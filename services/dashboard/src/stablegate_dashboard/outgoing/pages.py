"""`/outgoing`: the signing rounds of funds out (sweeps, refunds and payouts).

Everything is read from and done through the gateway's ops API; the dashboard keeps no
copy. Viewers see the rounds; only admins plan, download a signing request, upload the
signed file or cancel (the forms are absent for viewers, and `Admin` refuses their POSTs
with 403 whatever they send). A refusal from the gateway is shown with the gateway's own
reason on the page the action came from; a success redirects (post/redirect/get).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from stablegate_common.core.errors import DomainError, InvalidRequest, NotFound
from stablegate_dashboard.gateway_api import GatewayRefused, GatewayUnavailable
from stablegate_dashboard.outgoing.service import BatchView, batch_view, is_batch_id
from stablegate_dashboard.users.service import Principal
from stablegate_dashboard.web.context import Ctx, DashboardContext
from stablegate_dashboard.web.notices import outcome_url
from stablegate_dashboard.web.session import Admin, User

log = logging.getLogger(__name__)

PAGE_SIZE = 20
# A signed response of the signer's 1,000-transaction maximum is well under this.
MAX_SIGNED_BYTES = 8 * 1024 * 1024
SIGNED_FIELD = "signed_file"

router = APIRouter(include_in_schema=False)


def ops_problem(exc: DomainError) -> str:
    """What to tell an operator when the ops API cannot be read."""
    if isinstance(exc, GatewayRefused) and exc.status == 404:
        return (
            "The gateway's ops API is off: set GATEWAY_OPS_TOKEN on the gateway "
            "(and the same value as DASHBOARD_GATEWAY_OPS_TOKEN here)."
        )
    if isinstance(exc, GatewayRefused) and exc.status in (401, 403):
        return (
            "The gateway refused the dashboard's ops token: DASHBOARD_GATEWAY_OPS_TOKEN "
            "must equal the gateway's GATEWAY_OPS_TOKEN."
        )
    return exc.message


def chosen_network(ctx: DashboardContext, form: Any) -> str | None:
    """The network a plan form names, or None for every network."""
    network = str(form.get("network") or "") or None
    if network is not None and network not in ctx.registry.names():
        raise InvalidRequest(
            f"network must be one of: {', '.join(ctx.registry.names())} (or empty for all)",
            param="network",
        )
    return network


def batches_made(planned: dict[str, Any]) -> list[dict[str, Any]]:
    """The batches a plan call answered with (a list, or one batch on its own)."""
    data = planned.get("data")
    batches = [b for b in data if isinstance(b, dict)] if isinstance(data, list) else []
    if not batches and is_batch_id(str(planned.get("id", ""))):
        batches = [planned]
    return batches


def _batch_id(batch_id: str) -> str:
    if not is_batch_id(batch_id):
        raise NotFound(f"No such outgoing batch: {batch_id!r}", param="id")
    return batch_id


def form_action_key(form: Any, action: str) -> str:
    key = str(form.get("action_key") or secrets.token_urlsafe(16))[:64]
    return f"dashboard-outgoing-{action}-{key}"


async def _list_page(
    ctx: DashboardContext,
    request: Request,
    *,
    starting_after: str | None = None,
    action_error: str | None = None,
    status_code: int = 200,
) -> Response:
    batches: list[BatchView] = []
    has_more = False
    problem: str | None = None
    if ctx.ops.configured:
        try:
            listed = await ctx.ops.list_batches(limit=PAGE_SIZE, starting_after=starting_after)
            data = listed.get("data")
            batches = [batch_view(b, ctx.registry) for b in (data or []) if isinstance(b, dict)]
            has_more = bool(listed.get("has_more"))
        except DomainError as exc:
            problem = ops_problem(exc)
    return ctx.pages.render(
        request,
        "outgoing.html",
        status_code=status_code,
        nav="outgoing",
        configured=ctx.ops.configured,
        problem=problem,
        action_error=action_error,
        batches=batches,
        has_more=has_more,
        starting_after=starting_after,
        networks=ctx.registry.names(),
        action_key=secrets.token_urlsafe(16),
    )


async def _batch_page(
    ctx: DashboardContext,
    request: Request,
    batch_id: str,
    *,
    action_error: str | None = None,
    status_code: int = 200,
) -> Response:
    if not ctx.ops.configured:
        return await _list_page(ctx, request)
    try:
        batch = batch_view(await ctx.ops.get_batch(batch_id), ctx.registry)
    except GatewayRefused as exc:
        if exc.code == "resource_missing":
            raise NotFound(f"No such outgoing batch: {batch_id!r}", param="id") from exc
        return await _list_page(ctx, request, action_error=ops_problem(exc), status_code=502)
    except GatewayUnavailable as exc:
        return await _list_page(ctx, request, action_error=ops_problem(exc), status_code=503)
    return ctx.pages.render(
        request,
        "outgoing_batch.html",
        status_code=status_code,
        nav="outgoing",
        batch=batch,
        action_error=action_error,
        action_key=secrets.token_urlsafe(16),
    )


async def _refused(
    ctx: DashboardContext,
    request: Request,
    principal: Principal,
    exc: GatewayRefused | GatewayUnavailable,
    *,
    action: str,
    batch_id: str | None,
) -> Response:
    """The page the action came from, with the gateway's reason at the top."""
    log.warning(
        "outgoing action refused",
        extra={"action": action, "batch": batch_id, "user": principal.user_id, "code": exc.code},
    )
    status = 503 if isinstance(exc, GatewayUnavailable) else 422
    message = f"The gateway refused: {exc.message}" if status == 422 else ops_problem(exc)
    if batch_id is not None:
        return await _batch_page(ctx, request, batch_id, action_error=message, status_code=status)
    return await _list_page(ctx, request, action_error=message, status_code=status)


@router.get("/outgoing")
async def outgoing_page(
    ctx: Ctx, request: Request, user: User, starting_after: str | None = None
) -> Response:
    cursor = starting_after if starting_after and is_batch_id(starting_after) else None
    return await _list_page(ctx, request, starting_after=cursor)


@router.get("/outgoing/{batch_id}")
async def batch_page(ctx: Ctx, request: Request, user: User, batch_id: str) -> Response:
    return await _batch_page(ctx, request, _batch_id(batch_id))


@router.post("/outgoing/sweeps")
async def plan_sweep(ctx: Ctx, request: Request, principal: Admin) -> Response:
    form = await request.form()
    network = chosen_network(ctx, form)
    try:
        planned = await ctx.ops.plan_sweeps(network, idempotency_key=form_action_key(form, "sweep"))
    except (GatewayRefused, GatewayUnavailable) as exc:
        return await _refused(ctx, request, principal, exc, action="plan_sweep", batch_id=None)
    batches = batches_made(planned)
    log.info(
        "sweep planned from the dashboard",
        extra={"network": network, "batches": len(batches), "user": principal.user_id},
    )
    if len(batches) == 1 and is_batch_id(str(batches[0].get("id", ""))):
        target = f"/outgoing/{batches[0]['id']}"
        return RedirectResponse(outcome_url(target, notice="sweep_planned"), status_code=303)
    notice = "sweep_planned" if batches else "sweep_nothing"
    return RedirectResponse(outcome_url("/outgoing", notice=notice), status_code=303)


@router.post("/outgoing/{batch_id}/request")
async def download_request(ctx: Ctx, request: Request, principal: Admin, batch_id: str) -> Response:
    batch_id = _batch_id(batch_id)
    form = await request.form()
    try:
        document = await ctx.ops.issue_request(
            batch_id, idempotency_key=form_action_key(form, f"issue-{batch_id}")
        )
    except (GatewayRefused, GatewayUnavailable) as exc:
        return await _refused(ctx, request, principal, exc, action="issue", batch_id=batch_id)
    log.info(
        "signing request downloaded from the dashboard",
        extra={"batch": batch_id, "user": principal.user_id, "bytes": len(document)},
    )
    # The bytes exactly as the gateway stored them: the request's digest covers them.
    return Response(
        document,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{batch_id}.request.json"'},
    )


@router.post("/outgoing/signed")
async def upload_signed(ctx: Ctx, request: Request, principal: Admin) -> Response:
    form = await request.form()
    back = str(form.get("batch_id") or "")
    from_batch = back if is_batch_id(back) else None
    upload = form.get(SIGNED_FIELD)
    signed = await upload.read(MAX_SIGNED_BYTES + 1) if isinstance(upload, UploadFile) else b""
    problem = None
    if not signed:
        problem = "Choose the signed file (SIGNED.json, from stablegate-signer sign) to upload."
    elif len(signed) > MAX_SIGNED_BYTES:
        limit = MAX_SIGNED_BYTES // (1024 * 1024)
        problem = f"The file is larger than {limit} MiB: it is not a signed response."
    if problem is not None:
        if from_batch is not None:
            return await _batch_page(
                ctx, request, from_batch, action_error=problem, status_code=400
            )
        return await _list_page(ctx, request, action_error=problem, status_code=400)
    try:
        accepted = await ctx.ops.submit_signed(
            signed, idempotency_key=form_action_key(form, "signed")
        )
    except (GatewayRefused, GatewayUnavailable) as exc:
        return await _refused(ctx, request, principal, exc, action="upload", batch_id=from_batch)
    batch_id = str(accepted.get("id") or "")
    log.info(
        "signed response accepted from the dashboard",
        extra={"batch": batch_id, "user": principal.user_id, "bytes": len(signed)},
    )
    target = f"/outgoing/{batch_id}" if is_batch_id(batch_id) else "/outgoing"
    return RedirectResponse(outcome_url(target, notice="signed_accepted"), status_code=303)


@router.post("/outgoing/{batch_id}/cancel")
async def cancel_batch(ctx: Ctx, request: Request, principal: Admin, batch_id: str) -> Response:
    batch_id = _batch_id(batch_id)
    form = await request.form()
    try:
        await ctx.ops.cancel_batch(
            batch_id, idempotency_key=form_action_key(form, f"cancel-{batch_id}")
        )
    except (GatewayRefused, GatewayUnavailable) as exc:
        return await _refused(ctx, request, principal, exc, action="cancel", batch_id=batch_id)
    log.info(
        "outgoing batch canceled from the dashboard",
        extra={"batch": batch_id, "user": principal.user_id},
    )
    target = f"/outgoing/{batch_id}"
    return RedirectResponse(outcome_url(target, notice="batch_canceled"), status_code=303)
