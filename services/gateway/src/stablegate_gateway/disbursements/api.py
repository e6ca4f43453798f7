"""`/v1/refunds` and `/v1/payouts`: create, retrieve, list and cancel (DESIGN.md §3, §8).

Both go through the same pipeline as sweeps: planned into a signing round, signed
offline by `stablegate-signer`, broadcast, confirmed. Each request owns its unit of work;
`Idempotency-Key` replays a POST as for intents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from stablegate_common.core.errors import InvalidRequest
from stablegate_gateway.api.body import json_body, openapi_body
from stablegate_gateway.api.dependencies import Context, CurrentMerchant
from stablegate_gateway.api.errors import ERROR_RESPONSES, NOT_FOUND_RESPONSE
from stablegate_gateway.api.pagination import PageParams, list_object, page_params
from stablegate_gateway.disbursements import service
from stablegate_gateway.disbursements.presenter import present_disbursement
from stablegate_gateway.disbursements.schemas import (
    PAYOUT_EXAMPLE,
    REFUND_EXAMPLE,
    CreatePayout,
    CreateRefund,
    PayoutList,
    PayoutOut,
    RefundList,
    RefundOut,
)
from stablegate_gateway.disbursements.states import DisbursementStatus

refunds = APIRouter(prefix="/v1/refunds", tags=["Refunds"])
payouts = APIRouter(prefix="/v1/payouts", tags=["Payouts"])

Id = Annotated[str, Path(description="the refund's (re_…) or payout's (po_…) id")]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "it is no longer pending (its signing request is out)"}
}

STATUS_DESCRIPTION = (
    "`pending`: waiting for a signing round (and, above the merchant's limit, for two "
    "admins' approvals). `awaiting_signature`: in a signing request handed to the signer. "
    "`processing`: signed and broadcast, confirming. `succeeded`: confirmed on chain. "
    "`failed`: it reverted on chain (the funds did not move; `failure_reason` says why). "
    "`canceled`: canceled before it was signed."
)


@refunds.post(
    "",
    summary="Create a refund",
    description=(
        "Return an intent's received funds (all that is refundable, or `amount`) to "
        "`destination_address`, which the customer gives: it is never taken from the paying "
        "transfer's sender (an exchange's hot wallet, often). The network fee is paid by the "
        "merchant. " + STATUS_DESCRIPTION
    ),
    responses={200: {"model": RefundOut}, **ERROR_RESPONSES, **NOT_FOUND_RESPONSE},
    openapi_extra=openapi_body(CreateRefund, REFUND_EXAMPLE),
)
async def create_refund(
    ctx: Context,
    principal: CurrentMerchant,
    params: Annotated[CreateRefund, Depends(json_body(CreateRefund))],
) -> JSONResponse:
    async with ctx.db.transaction() as session:
        refund = await service.create_refund(
            session, ctx, principal.merchant_id, principal.api_key_id, params
        )
        body = present_disbursement(refund)
    return JSONResponse(body)


@payouts.post(
    "",
    summary="Create a payout",
    description=(
        "Pay `amount` of `asset` on `network` from the merchant's available balance "
        "(`GET /v1/balances`) to `destination_address`. " + STATUS_DESCRIPTION
    ),
    responses={200: {"model": PayoutOut}, **ERROR_RESPONSES},
    openapi_extra=openapi_body(CreatePayout, PAYOUT_EXAMPLE),
)
async def create_payout(
    ctx: Context,
    principal: CurrentMerchant,
    params: Annotated[CreatePayout, Depends(json_body(CreatePayout))],
) -> JSONResponse:
    async with ctx.db.transaction() as session:
        payout = await service.create_payout(
            session, ctx, principal.merchant_id, principal.api_key_id, params
        )
        body = present_disbursement(payout)
    return JSONResponse(body)


def _routes(
    router: APIRouter,
    kind: str,
    one: type[RefundOut | PayoutOut],
    many: type[RefundList | PayoutList],
) -> None:
    @router.get(
        "/{disbursement_id}",
        summary=f"Retrieve a {kind}",
        description=f"One {kind}, with its status, transaction hash and network fee.",
        responses={200: {"model": one}, **ERROR_RESPONSES, **NOT_FOUND_RESPONSE},
    )
    async def retrieve(
        ctx: Context, principal: CurrentMerchant, disbursement_id: Id
    ) -> JSONResponse:
        async with ctx.db.sessions() as session:
            found = await service.get(session, principal.merchant_id, kind, disbursement_id)
            body = present_disbursement(found)
        return JSONResponse(body)

    @router.get(
        "",
        summary=f"List {kind}s",
        description="Newest first, paged with `starting_after` / `ending_before`; filter by "
        "`status`" + (" and `payment_intent`." if kind == "refund" else "."),
        responses={200: {"model": many}, **ERROR_RESPONSES},
    )
    async def list_all(
        ctx: Context,
        principal: CurrentMerchant,
        page: Annotated[PageParams, Depends(page_params)],
        status: Annotated[str | None, Query(description="only those in this status")] = None,
        payment_intent: Annotated[
            str | None, Query(description="only refunds of this intent")
        ] = None,
    ) -> JSONResponse:
        if payment_intent is not None and kind != "refund":
            raise InvalidRequest(
                "payment_intent filters refunds only.",
                param="payment_intent",
                code="parameter_unknown",
            )
        filters = service.Filters(kind, _status(status), payment_intent)
        async with ctx.db.sessions() as session:
            found = await service.list_disbursements(session, principal.merchant_id, filters, page)
            data: list[dict[str, Any]] = [present_disbursement(d) for d in found.items]
        return JSONResponse(list_object(data, has_more=found.has_more, url=router.prefix))

    @router.post(
        "/{disbursement_id}/cancel",
        summary=f"Cancel a {kind}",
        description=f"Only a `pending` {kind} (409 `{kind}_not_cancelable` after). No body.",
        responses={200: {"model": one}, **ERROR_RESPONSES, **NOT_FOUND_RESPONSE, **CONFLICT},
    )
    async def cancel(ctx: Context, principal: CurrentMerchant, disbursement_id: Id) -> JSONResponse:
        async with ctx.db.transaction() as session:
            found = await service.cancel(session, ctx, principal.merchant_id, kind, disbursement_id)
            body = present_disbursement(found)
        return JSONResponse(body)


def _status(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return DisbursementStatus(value).value
    except ValueError:
        allowed = ", ".join(s.value for s in DisbursementStatus)
        raise InvalidRequest(
            f"Invalid status: {value!r} (one of: {allowed}).",
            param="status",
            code="parameter_invalid",
        ) from None


_routes(refunds, "refund", RefundOut, RefundList)
_routes(payouts, "payout", PayoutOut, PayoutList)
