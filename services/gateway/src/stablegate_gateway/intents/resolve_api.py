"""`POST /v1/payment_intents/{id}/resolve`: a person's decision on a `requires_action`
intent. A router of its own, included by `payments_wiring.routers()`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from stablegate_common.logging import intent_id_var
from stablegate_gateway.api.body import json_body, openapi_body
from stablegate_gateway.api.dependencies import Context, CurrentMerchant
from stablegate_gateway.api.errors import NOT_FOUND_RESPONSE
from stablegate_gateway.intents import resolution
from stablegate_gateway.intents.api import ONE_INTENT, IntentId, present_one

router = APIRouter(prefix="/v1/payment_intents", tags=["Payment intents"])

RESOLVE_EXAMPLE: dict[str, Any] = {
    "action": "mark_paid",
    "reason": "Customer's exchange kept 0.80 USDT as a fee; order shipped anyway.",
}


class ResolvePaymentIntent(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": RESOLVE_EXAMPLE})

    action: Literal["mark_paid", "void"] = Field(
        description="`mark_paid`: the intent becomes `paid` (fulfil the order). `void`: it "
        "becomes `canceled` (nothing will be fulfilled; return any funds yourself). Either "
        "way `exception` keeps the reason it needed action."
    )
    reason: str = Field(
        max_length=resolution.MAX_REASON,
        description="why, in your words; recorded with the API key (or token) that resolved",
        examples=[RESOLVE_EXAMPLE["reason"]],
    )


@router.post(
    "/{intent_id}/resolve",
    summary="Resolve a payment intent that requires action",
    description=(
        "Decide on an intent in status `requires_action` (see its `exception`: `underpaid`, "
        "`paid_late`, `wrong_asset`, `wrong_network`). The decision is final: later chain "
        "activity still updates the amounts and transfers but not the status. Who resolved "
        "it and why is recorded. Any other status answers 409 `intent_not_resolvable`."
    ),
    responses={
        **ONE_INTENT,
        **NOT_FOUND_RESPONSE,
        409: {"description": "the intent is not in status `requires_action`"},
    },
    openapi_extra=openapi_body(ResolvePaymentIntent, RESOLVE_EXAMPLE),
)
async def resolve_payment_intent(
    ctx: Context,
    principal: CurrentMerchant,
    intent_id: IntentId,
    params: Annotated[ResolvePaymentIntent, Depends(json_body(ResolvePaymentIntent))],
) -> JSONResponse:
    intent_id_var.set(intent_id)
    choice = resolution.decision(params.action, params.reason)
    async with ctx.db.transaction() as session:
        intent = await resolution.resolve_intent(session, ctx, principal, intent_id, choice)
        body = await present_one(session, ctx, intent)
    return JSONResponse(body)
