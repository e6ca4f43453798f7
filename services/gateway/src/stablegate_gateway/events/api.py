"""`GET /v1/events` and `GET /v1/events/{id}`: the merchant event stream, for merchants
who missed webhooks. Events are the same objects webhooks deliver."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from stablegate_common.core.errors import InvalidRequest, NotFound
from stablegate_gateway.api.dependencies import Context, CurrentMerchant
from stablegate_gateway.api.errors import ERROR_RESPONSES, NOT_FOUND_RESPONSE
from stablegate_gateway.api.pagination import PageParams, list_object, page_params, paginate
from stablegate_gateway.api.serialization import timestamp_param
from stablegate_gateway.events import repository
from stablegate_gateway.events.models import MerchantEvent
from stablegate_gateway.events.schemas import EVENT_TYPES
from stablegate_gateway.webhooks.delivery import event_payload

router = APIRouter(prefix="/v1/events", tags=["Events"])

LIST_URL = "/v1/events"


class EventOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(examples=["evt_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4"])
    object: Literal["event"]
    type: str = Field(examples=["payment_intent.paid"])
    created_at: str = Field(examples=["2026-11-27T12:00:00.000000Z"])
    data: dict[str, Any] = Field(description='`{"object": …}`: the object as it was then')
    sequence: int = Field(description="the object's version; apply only newer ones")


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
        "Newest first, paginated like every list. Events are kept with the objects they "
        "describe; use `type`, `object_id` and `created_gte`/`created_lte` to find the ones "
        "a missed webhook would have carried."
    ),
    responses={200: {"model": EventList}, **ERROR_RESPONSES},
)
async def list_events(
    ctx: Context,
    principal: CurrentMerchant,
    page: Annotated[PageParams, Depends(page_params)],
    type: Annotated[
        str | None, Query(description="only events of this type", examples=["payment_intent.paid"])
    ] = None,
    object_id: Annotated[str | None, Query(description="only events about this object")] = None,
    created_gte: Annotated[
        str | None, Query(description="created at or after: ISO 8601 or unix seconds")
    ] = None,
    created_lte: Annotated[
        str | None, Query(description="created at or before: ISO 8601 or unix seconds")
    ] = None,
) -> JSONResponse:
    if type is not None and type not in EVENT_TYPES:
        raise InvalidRequest(
            f"Unknown event type {type!r}.", param="type", code="parameter_invalid"
        )
    query = repository.list_query(
        principal.merchant_id,
        event_type=type,
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
    responses={200: {"model": EventOut}, **ERROR_RESPONSES, **NOT_FOUND_RESPONSE},
)
async def retrieve_event(
    ctx: Context,
    principal: CurrentMerchant,
    event_id: Annotated[str, Path(description="the event's id")],
) -> JSONResponse:
    async with ctx.db.sessions() as session:
        event = await repository.get(session, principal.merchant_id, event_id)
    if event is None:
        raise NotFound(f"No such event: {event_id!r}", param="id")
    return JSONResponse(event_payload(event))
