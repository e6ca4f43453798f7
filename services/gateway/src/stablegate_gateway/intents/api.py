"""`/v1/payment_intents`: create, retrieve, list and cancel. Each request owns its unit
of work; the services below only flush."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.errors import InvalidRequest
from stablegate_common.logging import intent_id_var
from stablegate_gateway.api.body import json_body, openapi_body
from stablegate_gateway.api.dependencies import Context, CurrentMerchant
from stablegate_gateway.api.errors import ERROR_RESPONSES, NOT_FOUND_RESPONSE
from stablegate_gateway.api.pagination import PageParams, list_object, page_params
from stablegate_gateway.api.serialization import timestamp_param
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.core.lifecycle import Status
from stablegate_gateway.intents import repository, service
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.intents.presenter import present_intent
from stablegate_gateway.intents.repository import IntentFilters
from stablegate_gateway.intents.schemas import (
    CREATE_EXAMPLE,
    CreatePaymentIntent,
    PaymentIntentList,
    PaymentIntentOut,
)
from stablegate_gateway.networks import repository as networks

router = APIRouter(prefix="/v1/payment_intents", tags=["Payment intents"])

IntentId = Annotated[
    str, Path(description="the payment intent's id", examples=["pi_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4"])
]
ONE_INTENT = {200: {"model": PaymentIntentOut}, **ERROR_RESPONSES}


@router.post(
    "",
    summary="Create a payment intent",
    description=(
        "Ask to be paid `amount` of `currency` (USDT or USDC) on `network`. The gateway "
        "validates the whole request before writing anything, reserves a deposit address "
        "for this intent alone, and returns the intent with its `deposit_address`, an "
        "EIP-681 `payment_uri` and a hosted `checkout_url`. Amounts are decimal strings; a "
        "JSON number is refused."
    ),
    responses=ONE_INTENT,
    openapi_extra=openapi_body(CreatePaymentIntent, CREATE_EXAMPLE),
)
async def create_payment_intent(
    ctx: Context,
    principal: CurrentMerchant,
    params: Annotated[CreatePaymentIntent, Depends(json_body(CreatePaymentIntent))],
) -> JSONResponse:
    async with ctx.db.transaction() as session:
        intent = await service.create_intent(session, ctx, principal.merchant_id, params)
        intent_id_var.set(intent.id)
    # A new intent has no transfers yet, so no head is needed to count confirmations.
    return JSONResponse(present_intent(intent, [], ctx, None))


@router.get(
    "/{intent_id}",
    summary="Retrieve a payment intent",
    description="One payment intent with its transfers and their current confirmations.",
    responses={**ONE_INTENT, **NOT_FOUND_RESPONSE},
)
async def retrieve_payment_intent(
    ctx: Context, principal: CurrentMerchant, intent_id: IntentId
) -> JSONResponse:
    async with ctx.db.sessions() as session:
        intent = await service.get_intent(session, principal.merchant_id, intent_id)
        body = await present_one(session, ctx, intent)
    return JSONResponse(body)


@router.get(
    "",
    summary="List payment intents",
    description=(
        "Newest first. Page with `starting_after` (older) or `ending_before` (newer) set to "
        "an intent id; `has_more` says whether another page exists in that direction."
    ),
    responses={200: {"model": PaymentIntentList}, **ERROR_RESPONSES},
)
async def list_payment_intents(
    ctx: Context,
    principal: CurrentMerchant,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[
        str | None, Query(description="only intents in this status", examples=["paid"])
    ] = None,
    network: Annotated[str | None, Query(description="only intents on this network")] = None,
    reference: Annotated[str | None, Query(description="only intents with this reference")] = None,
    created_gte: Annotated[
        str | None, Query(description="created at or after: ISO 8601 or unix seconds")
    ] = None,
    created_lte: Annotated[
        str | None, Query(description="created at or before: ISO 8601 or unix seconds")
    ] = None,
) -> JSONResponse:
    filters = IntentFilters(
        status=_status_filter(status),
        network=ctx.registry.network(network).name if network is not None else None,
        reference=reference,
        created_gte=timestamp_param("created_gte", created_gte),
        created_lte=timestamp_param("created_lte", created_lte),
    )
    async with ctx.db.sessions() as session:
        found = await service.list_intents(session, principal.merchant_id, filters, page)
        data = await present_many(session, ctx, found.items)
    return JSONResponse(list_object(data, has_more=found.has_more, url="/v1/payment_intents"))


@router.post(
    "/{intent_id}/cancel",
    summary="Cancel a payment intent",
    description=(
        "Cancel an intent that is still `awaiting_payment` with nothing received. Once a "
        "transfer has been seen the intent cannot be canceled (409 `intent_not_cancelable`). "
        "The deposit address cools down before it is used again, so a late payment is still "
        "attributed to this intent. No body."
    ),
    responses={
        **ONE_INTENT,
        **NOT_FOUND_RESPONSE,
        409: {"description": "the intent has seen funds or has already ended"},
    },
)
async def cancel_payment_intent(
    ctx: Context, principal: CurrentMerchant, intent_id: IntentId
) -> JSONResponse:
    intent_id_var.set(intent_id)
    async with ctx.db.transaction() as session:
        intent = await service.cancel_intent(session, ctx, principal.merchant_id, intent_id)
        body = await present_one(session, ctx, intent)
    return JSONResponse(body)


async def present_one(
    session: AsyncSession, ctx: GatewayContext, intent: PaymentIntent
) -> dict[str, Any]:
    """The intent as the API shows it, with its transfers and their confirmations."""
    transfers = await repository.transfers_of(session, [intent.id])
    head = await networks.head(session, intent.network)
    return present_intent(intent, transfers.get(intent.id, []), ctx, head)


async def present_many(
    session: AsyncSession, ctx: GatewayContext, intents: Sequence[PaymentIntent]
) -> list[dict[str, Any]]:
    transfers = await repository.transfers_of(session, [i.id for i in intents])
    heads = await networks.heads(session) if intents else {}
    return [present_intent(i, transfers.get(i.id, []), ctx, heads.get(i.network)) for i in intents]


def _status_filter(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return Status(value).value
    except ValueError:
        allowed = ", ".join(s.value for s in Status)
        raise InvalidRequest(
            f"Invalid status: {value!r} (one of: {allowed}).",
            param="status",
            code="parameter_invalid",
        ) from None
