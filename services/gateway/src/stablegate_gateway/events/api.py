"""`GET /v1/events` and `GET /v1/events/{id}`: the merchant event stream, for merchants
who missed webhooks. Events are the same objects webhooks deliver, each with the
`sequence` of the object it describes (apply only a newer one)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from stablegate_common.core.errors import InvalidRequest, NotFound
from stablegate_gateway.api.dependencies import Context, CurrentMerchant
from stablegate_gateway.api.errors import ERROR_RESPONSES, NOT_FOUND_RESPONSE
from stablegate_gateway.api.pagination import PageParams, list_object, page_params, paginate
from stablegate_gateway.api.responses import ok
from stablegate_gateway.api.serialization import timestamp_param
from stablegate_gateway.events import repository
from stablegate_gateway.events.models import MerchantEvent
from stablegate_gateway.events.schemas import EVENT_TYPES
from stablegate_gateway.webhooks.delivery import event_payload
from stablegate_gateway.webhooks.schemas import ENDPOINT_EVENT_TYPES

router = APIRouter(prefix="/v1/events", tags=["Events"])

LIST_URL = "/v1/events"
EVENT_ID = "evt_01JDQ3M4W6Z0E9T0QJX1N2Y3Z6"
EVENT_EXAMPLE: dict[str, Any] = {
    "id": EVENT_ID,
    "object": "event",
    "type": "payment_intent.paid",
    "created_at": "2026-11-27T12:04:10.000000Z",
    "data": {
        "object": {
            "id": "pi_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4",
            "object": "payment_intent",
            "status": "paid",
            "amount": "25.00",
            "amount_confirmed": "25.00",
            "…": "the whole payment intent, as GET /v1/payment_intents/{id} returns it",
        }
    },
    "sequence": 3,
}

LIST_EXAMPLE: dict[str, Any] = {
    "object": "list",
    "data": [EVENT_EXAMPLE],
    "has_more": False,
    "url": LIST_URL,
}


def known_event_types() -> frozenset[str]:
    return EVENT_TYPES | ENDPOINT_EVENT_TYPES


class EventOut(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": EVENT_EXAMPLE})

    id: str = Field(examples=[EVENT_ID])
    object: Literal["event"]
    type: str = Field(examples=["payment_intent.paid"])
    created_at: str = Field(examples=["2026-11-27T12:00:00.000000Z"])
    data: dict[str, Any] = Field(description='`{"object": …}`: the object as it was then')
    sequence: int = Field(
        description="the object's version, increasing with each event about it: apply an "
        "event only when its sequence is above the one you hold"
    )


class EventList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[EventOut]
    has_more: bool
    url: Literal["/v1/events"]


@router.get(
    "",
    summary="List events",
    description=(
        "Newest first, paginated like every list. Use `type` (one type, or a family such as "
        "`payment_intent.*`), `object_id` and `created_gte`/`created_lte` to find the ones a "
        "missed webhook would have carried."
    ),
    responses={
        **ok(EventList, LIST_EXAMPLE),
        **ERROR_RESPONSES,
    },
)
async def list_events(
    ctx: Context,
    principal: CurrentMerchant,
    page: Annotated[PageParams, Depends(page_params)],
    type: Annotated[
        str | None,
        Query(
            description="only events of this type, or of a family (`payment_intent.*`)",
            examples=["payment_intent.paid"],
        ),
    ] = None,
    object_id: Annotated[
        str | None, Query(description="only events about this object (`pi_…`, `we_…`)")
    ] = None,
    created_gte: Annotated[
        str | None, Query(description="created at or after: ISO 8601 or unix seconds")
    ] = None,
    created_lte: Annotated[
        str | None, Query(description="created at or before: ISO 8601 or unix seconds")
    ] = None,
) -> JSONResponse:
    query = repository.list_query(
        principal.merchant_id,
        event_types=_types(type),
        object_id=object_id,
        created_gte=timestamp_param("created_gte", created_gte),
        created_lte=timestamp_param("created_lte", created_lte),
    )
    async with ctx.db.sessions() as session:
        found = await paginate(session, query, MerchantEvent.id, page)
    data = [event_payload(event) for event in found.items]
    return JSONResponse(list_object(data, has_more=found.has_more, url=LIST_URL))


@router.get(
    "/{event_id}",
    summary="Retrieve an event",
    description="One event, exactly as its webhooks carried it.",
    responses={**ok(EventOut, EVENT_EXAMPLE), **ERROR_RESPONSES, **NOT_FOUND_RESPONSE},
)
async def retrieve_event(
    ctx: Context,
    principal: CurrentMerchant,
    event_id: Annotated[str, Path(description="the event's id", examples=[EVENT_ID])],
) -> JSONResponse:
    async with ctx.db.sessions() as session:
        event = await repository.get(session, principal.merchant_id, event_id)
    if event is None:
        raise NotFound(f"No such event: {event_id!r}", param="id")
    return JSONResponse(event_payload(event))


def _types(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    known = known_event_types()
    if value.endswith(".*"):
        family = frozenset(t for t in known if t.startswith(value[:-1]))
        if family:
            return family
    elif value in known:
        return frozenset({value})
    raise InvalidRequest(
        f"Unknown event type {value!r} (one of: {', '.join(sorted(known))}, or a family "
        "such as payment_intent.*).",
        param="type",
        code="parameter_invalid",
    )
