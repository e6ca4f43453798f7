"""The ops side of refunds and payouts, `/ops/v1/disbursements/…` (same token as
`/ops/v1/outgoing`): list them across merchants, plan the pending ones into signing
rounds now, and approve one over its merchant's limit.

An approval names who gives it in the `Ops-Actor` header (the dashboard sends its
logged-in admin's user id): two different actors must approve (four eyes)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.errors import InvalidRequest
from stablegate_gateway.api.dependencies import Context
from stablegate_gateway.disbursements import service
from stablegate_gateway.disbursements.models import Disbursement
from stablegate_gateway.disbursements.planning import plan_disbursements
from stablegate_gateway.disbursements.presenter import present_disbursement
from stablegate_gateway.outgoing.api import Operator, present_batches
from stablegate_gateway.outgoing.models import OutgoingTransfer

router = APIRouter(
    prefix="/ops/v1/disbursements", tags=["Ops: refunds and payouts"], include_in_schema=False
)
ACTOR = re.compile(r"[A-Za-z0-9_.@:-]{1,80}")


class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    network: str | None = None


def present_for_ops(d: Disbursement, batches: dict[str, str]) -> dict[str, Any]:
    body = present_disbursement(d)
    body |= {
        "merchant": d.merchant_id,
        "payment_intent": d.payment_intent_id,
        "transfer_id": d.transfer_id,
        "batch_id": batches.get(d.transfer_id or ""),
        "approved": service.approved(d),
        "approvals": [dict(a) for a in d.approvals or []],
    }
    return body


@router.get("")
async def list_disbursements(
    ctx: Context,
    _: Operator,
    status: str | None = None,
    network: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    query = select(Disbursement).order_by(Disbursement.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Disbursement.status == status)
    if network is not None:
        query = query.where(Disbursement.network == ctx.registry.network(network).name)
    async with ctx.db.sessions() as session:
        rows = list(await session.scalars(query))
        batches = await _batches(session, [d.transfer_id for d in rows if d.transfer_id])
    data = [present_for_ops(d, batches) for d in rows]
    return JSONResponse({"object": "list", "data": data, "has_more": False, "url": router.prefix})


async def _batches(session: AsyncSession, transfer_ids: list[str]) -> dict[str, str]:
    if not transfer_ids:
        return {}
    rows = await session.execute(
        select(OutgoingTransfer.id, OutgoingTransfer.batch_id).where(
            OutgoingTransfer.id.in_(transfer_ids)
        )
    )
    return {transfer: batch for transfer, batch in rows.all()}


@router.post("/plan")
async def plan_now(
    ctx: Context,
    by: Operator,
    body: PlanRequest,
    actor: Annotated[str | None, Header(alias="Ops-Actor")] = None,
) -> JSONResponse:
    """Plan the pending refunds and payouts now: the batches made (none when nothing is
    pending and approved, or a round of that network is unfinished). `Ops-Actor`, when
    sent, is recorded as who planned them."""
    who = actor if actor is not None and _valid_actor(actor) else by
    async with ctx.db.transaction() as session:
        batches = await plan_disbursements(session, ctx, body.network, who)
        data = await present_batches(session, batches)
    return JSONResponse(
        {"object": "list", "data": data, "has_more": False, "url": f"{router.prefix}/plan"}
    )


@router.post("/{disbursement_id}/approve")
async def approve(
    ctx: Context,
    _: Operator,
    disbursement_id: str,
    actor: Annotated[str | None, Header(alias="Ops-Actor")] = None,
) -> JSONResponse:
    if actor is None or not _valid_actor(actor):
        raise InvalidRequest(
            "An approval needs the approving admin in the Ops-Actor header.",
            param="Ops-Actor",
            code="parameter_missing",
        )
    async with ctx.db.transaction() as session:
        found = await service.approve(session, ctx, disbursement_id, by=actor)
        body = present_for_ops(found, await _batches(session, [found.transfer_id or ""]))
    return JSONResponse(body)


def _valid_actor(actor: str) -> bool:
    return ACTOR.fullmatch(actor) is not None
