"""The ops API of funds out, `/ops/v1/outgoing/…`: list and show batches, plan a sweep,
download a signing request, upload its signed response, cancel.

Authenticated by `Authorization: Bearer <GATEWAY_OPS_TOKEN>` (compared in constant time);
with no token configured the whole API answers 404, as if it did not exist. Errors use the
gateway's envelope; a refused signed file is 422 `signed_response_rejected`.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from stablegate_common.core.errors import AuthenticationFailed
from stablegate_gateway.api.dependencies import Context
from stablegate_gateway.api.errors import error_response
from stablegate_gateway.outgoing import repository
from stablegate_gateway.outgoing.models import OutgoingBatch, OutgoingTransfer
from stablegate_gateway.outgoing.states import OutgoingState
from stablegate_gateway.outgoing.sweeps import plan_sweeps

MAX_SIGNED_BYTES = 4 * 1024 * 1024  # the signer's own document limit


def require_ops_token(request: Request, ctx: Context) -> str:
    """Who acts (for the records): `ops` when the token matches."""
    token = ctx.settings.outgoing.ops_token.get_secret_value()
    if not token:
        raise StarletteHTTPException(404)
    scheme, _sep, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        credential.strip().encode(), token.encode()
    ):
        raise AuthenticationFailed(
            "Send `Authorization: Bearer <GATEWAY_OPS_TOKEN>`.", code="invalid_ops_token"
        )
    return "ops"


Operator = Annotated[str, Depends(require_ops_token)]
router = APIRouter(prefix="/ops/v1/outgoing", tags=["Ops: outgoing"], include_in_schema=False)


class SweepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    network: str | None = None


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _int(value: int | None) -> str | None:
    return None if value is None else str(value)


def present_transfer(t: OutgoingTransfer) -> dict[str, Any]:
    """DESIGN §8's public states; the internal `canceling` (canceled after its request
    was issued, still watched because signed bytes may exist) shows as `canceled` with
    `canceling: true` until it is settled (then `canceling: false`, or booked)."""
    canceling = t.state == OutgoingState.CANCELING
    return {
        "object": "outgoing_transfer",
        "id": t.id,
        "batch_id": t.batch_id,
        "seq": t.seq,
        "purpose": t.purpose,
        "state": OutgoingState.CANCELED.value if canceling else t.state,
        "canceling": canceling,
        "network": t.network,
        "source_address": t.source_address,
        "source_path": t.source_path,
        "destination_address": t.destination_address,
        "asset": t.asset,
        "token_contract": t.token_contract,
        "decimals": t.decimals,
        "amount_base_units": str(t.amount_base_units),
        "depends_on": t.depends_on,
        "reference": t.reference,
        "replaces": t.replaces,
        "nonce": _int(t.nonce),
        "max_fee_base_units": str(t.max_fee_base_units),
        "estimated_fee_base_units": str(t.estimated_fee_base_units),
        "tx_hash": t.tx_hash,
        "broadcast_attempts": t.broadcast_attempts,
        "last_broadcast_error": t.last_broadcast_error,
        "block_number": _int(t.block_number),
        "receipt_status": t.receipt_status,
        "gas_used": _int(t.gas_used),
        "energy_used": _int(t.energy_used),
        "bandwidth_used": _int(t.bandwidth_used),
        "fee_paid_base_units": _int(t.fee_paid_base_units),
        "failure_reason": t.failure_reason,
        "expiration_ms": _int(t.expiration_ms),
    }


async def present_batches(
    session: AsyncSession, batches: Sequence[OutgoingBatch]
) -> list[dict[str, Any]]:
    """Batches as a list shows them (each with its transfers' counts, not the transfers)."""
    return [
        present_batch(b, await repository.batch_transfers(session, b.id), detail=False)
        for b in batches
    ]


def present_batch(
    batch: OutgoingBatch, transfers: list[OutgoingTransfer], *, detail: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "outgoing_batch",
        "id": batch.id,
        "kind": batch.kind,
        "network": batch.network,
        "status": repository.batch_status(t.state for t in transfers),
        "transfer_count": len(transfers),
        "request_digest": batch.request_digest,
        "plan_summary": batch.plan_summary,
        "created_by": batch.created_by,
        "created_at": _time(batch.created_at),
        "issued_at": _time(batch.issued_at),
        "signed_at": _time(batch.signed_at),
        "canceled_at": _time(batch.canceled_at),
        "canceled_by": batch.canceled_by,
    }
    if detail:
        body["transfers"] = [present_transfer(t) for t in transfers]
    return body


@router.get("/batches")
async def list_batches(
    ctx: Context,
    _: Operator,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: str | None = None,
) -> JSONResponse:
    async with ctx.db.transaction() as session:
        batches = await repository.list_batches(
            session, limit=limit + 1, starting_after=starting_after
        )
        page = batches[:limit]
        data = await present_batches(session, page)
    return JSONResponse(
        {"object": "list", "data": data, "has_more": len(batches) > limit, "url": router.prefix}
    )


@router.get("/batches/{batch_id}")
async def get_batch(ctx: Context, _: Operator, batch_id: str) -> JSONResponse:
    async with ctx.db.transaction() as session:
        batch = await repository.get_batch(session, batch_id)
        transfers = await repository.batch_transfers(session, batch_id)
        return JSONResponse(present_batch(batch, transfers, detail=True))


@router.post("/sweeps")
async def plan_sweeps_now(ctx: Context, by: Operator, body: SweepRequest) -> JSONResponse:
    """Plans a sweep round now (one network, or each configured one): the batches made, an
    empty list when there is nothing worth sweeping or a round is still unfinished."""
    async with ctx.db.transaction() as session:
        batches = await plan_sweeps(session, ctx, body.network, by)
        data = await present_batches(session, batches)
    return JSONResponse(
        {"object": "list", "data": data, "has_more": False, "url": f"{router.prefix}/sweeps"}
    )


@router.post("/batches/{batch_id}/issue")
async def issue_request(ctx: Context, by: Operator, batch_id: str) -> Response:
    async with ctx.db.transaction() as session:
        document = await repository.issue_request(session, batch_id, by=by)
    return Response(
        document,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{batch_id}.request.json"'},
    )


@router.post("/signed_responses")
async def accept_signed(ctx: Context, by: Operator, request: Request) -> JSONResponse:
    body = await request.body()
    if len(body) > MAX_SIGNED_BYTES:
        return error_response(
            413, "invalid_request_error", "body_too_large", "A signed file is at most 4 MB."
        )
    try:
        async with ctx.db.transaction() as session:
            batch = await repository.accept_signed(session, body, by=by)
            transfers = await repository.batch_transfers(session, batch.id)
            presented = present_batch(batch, transfers, detail=True)
    except repository.SignedResponseRejected as exc:
        return error_response(422, "invalid_request_error", exc.code, exc.message, exc.param)
    return JSONResponse(presented)


@router.post("/batches/{batch_id}/cancel")
async def cancel_batch(ctx: Context, by: Operator, batch_id: str) -> JSONResponse:
    async with ctx.db.transaction() as session:
        batch = await repository.cancel_batch(session, batch_id, by=by)
        transfers = await repository.batch_transfers(session, batch_id)
        return JSONResponse(present_batch(batch, transfers, detail=True))
