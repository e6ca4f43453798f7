"""`/v1/webhook_endpoints` (create, list, retrieve, update, delete, `roll_secret`, `test`,
the delivery log) and `/v1/webhook_deliveries/{id}/redeliver`. Each request owns its
unit of work; the service only flushes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from stablegate_gateway.api.body import json_body, openapi_body
from stablegate_gateway.api.dependencies import Context, CurrentMerchant
from stablegate_gateway.api.errors import ERROR_RESPONSES, NOT_FOUND_RESPONSE
from stablegate_gateway.api.pagination import PageParams, list_object, page_params, paginate
from stablegate_gateway.api.responses import conflict, ok
from stablegate_gateway.webhooks import repository, service
from stablegate_gateway.webhooks.models import WebhookDelivery, WebhookEndpoint
from stablegate_gateway.webhooks.presenter import present_delivery, present_endpoint
from stablegate_gateway.webhooks.schemas import (
    CREATE_EXAMPLE,
    CREATED_EXAMPLE,
    DELIVERY_LIST_EXAMPLE,
    ENDPOINT_EXAMPLE,
    ENDPOINT_ID,
    REDELIVERY_EXAMPLE,
    ROLL_EXAMPLE,
    ROLLED_EXAMPLE,
    TEST_DELIVERY_EXAMPLE,
    UPDATE_EXAMPLE,
    CreateWebhookEndpoint,
    DeletedWebhookEndpoint,
    DeliveryStatus,
    EndpointStatus,
    RollSecret,
    UpdateWebhookEndpoint,
    WebhookDeliveryList,
    WebhookDeliveryOut,
    WebhookEndpointList,
    WebhookEndpointOut,
)

router = APIRouter(tags=["Webhooks"])

ENDPOINTS = "/v1/webhook_endpoints"
EndpointId = Annotated[str, Path(description="the webhook endpoint's id", examples=[ENDPOINT_ID])]
DeliveryId = Annotated[
    str, Path(description="the webhook delivery's id", examples=["whd_01JDQ3M4W6Z0E9T0QJX1N2Y3Z5"])
]
ONE_ENDPOINT = {**ok(WebhookEndpointOut, ENDPOINT_EXAMPLE), **ERROR_RESPONSES, **NOT_FOUND_RESPONSE}
DISABLED = conflict(
    "the endpoint is disabled: enable it first",
    "endpoint_disabled",
    f"Webhook endpoint {ENDPOINT_ID} is disabled; enable it first.",
)


@router.post(
    ENDPOINTS,
    summary="Create a webhook endpoint",
    description=(
        "Register a URL that receives events as signed `POST`s "
        '(`Stablegate-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`). '
        "The response carries the endpoint's `whsec_…` `secret`: store it now, it is never "
        "shown again. URLs resolving to private, loopback or link-local addresses are refused."
    ),
    responses={**ok(WebhookEndpointOut, CREATED_EXAMPLE), **ERROR_RESPONSES},
    openapi_extra=openapi_body(CreateWebhookEndpoint, CREATE_EXAMPLE),
)
async def create_webhook_endpoint(
    ctx: Context,
    principal: CurrentMerchant,
    params: Annotated[CreateWebhookEndpoint, Depends(json_body(CreateWebhookEndpoint))],
) -> JSONResponse:
    async with ctx.db.transaction() as session:
        endpoint = await service.create_endpoint(
            session,
            ctx,
            principal.merchant_id,
            url=params.url,
            enabled_events=params.enabled_events,
            description=params.description,
        )
        body = present_endpoint(endpoint, with_secret=True)
    return JSONResponse(body)


@router.get(
    ENDPOINTS,
    summary="List webhook endpoints",
    description="Newest first, paged like every list (`limit`, `starting_after`, `ending_before`).",
    responses={200: {"model": WebhookEndpointList}, **ERROR_RESPONSES},
)
async def list_webhook_endpoints(
    ctx: Context,
    principal: CurrentMerchant,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[
        EndpointStatus | None, Query(description="only endpoints in this status")
    ] = None,
) -> JSONResponse:
    async with ctx.db.sessions() as session:
        found = await paginate(
            session,
            repository.live_endpoints(principal.merchant_id, status=status),
            WebhookEndpoint.id,
            page,
        )
    data = [present_endpoint(e) for e in found.items]
    return JSONResponse(list_object(data, has_more=found.has_more, url=ENDPOINTS))


@router.get(
    ENDPOINTS + "/{endpoint_id}",
    summary="Retrieve a webhook endpoint",
    description="The endpoint without its secret.",
    responses=ONE_ENDPOINT,
)
async def retrieve_webhook_endpoint(
    ctx: Context, principal: CurrentMerchant, endpoint_id: EndpointId
) -> JSONResponse:
    async with ctx.db.sessions() as session:
        endpoint = await service.get_endpoint(session, principal.merchant_id, endpoint_id)
    return JSONResponse(present_endpoint(endpoint))


@router.post(
    ENDPOINTS + "/{endpoint_id}",
    summary="Update a webhook endpoint",
    description=(
        "Change the `url`, `enabled_events` or `description`, or disable (`disabled: true`) "
        "and enable again (`disabled: false`) — also an endpoint the gateway disabled after "
        "three days of failed deliveries. Parameters left out are kept. Enabling does not "
        "resend what was missed: list it with `GET /v1/events` or redeliver from the log."
    ),
    responses=ONE_ENDPOINT,
    openapi_extra=openapi_body(UpdateWebhookEndpoint, UPDATE_EXAMPLE),
)
async def update_webhook_endpoint(
    ctx: Context,
    principal: CurrentMerchant,
    endpoint_id: EndpointId,
    params: Annotated[UpdateWebhookEndpoint, Depends(json_body(UpdateWebhookEndpoint))],
) -> JSONResponse:
    async with ctx.db.transaction() as session:
        endpoint = await service.update_endpoint(
            session,
            ctx,
            principal.merchant_id,
            endpoint_id,
            url=params.url,
            enabled_events=params.enabled_events,
            description=params.description,
            disabled=params.disabled,
        )
        body = present_endpoint(endpoint)
    return JSONResponse(body)


@router.delete(
    ENDPOINTS + "/{endpoint_id}",
    summary="Delete a webhook endpoint",
    description="Stops deliveries to the endpoint at once, including pending retries.",
    responses={
        **ok(
            DeletedWebhookEndpoint,
            {"id": ENDPOINT_ID, "object": "webhook_endpoint", "deleted": True},
        ),
        **ERROR_RESPONSES,
        **NOT_FOUND_RESPONSE,
    },
)
async def delete_webhook_endpoint(
    ctx: Context, principal: CurrentMerchant, endpoint_id: EndpointId
) -> JSONResponse:
    async with ctx.db.transaction() as session:
        endpoint = await service.delete_endpoint(session, principal.merchant_id, endpoint_id)
    return JSONResponse({"id": endpoint.id, "object": "webhook_endpoint", "deleted": True})


@router.post(
    ENDPOINTS + "/{endpoint_id}/roll_secret",
    summary="Roll a webhook endpoint's secret",
    description=(
        "Generate a new `whsec_…` secret, returned in this response only. The old secret "
        "keeps signing beside the new one for `expires_in` seconds (default 86400, at most "
        "7 days; 0 ends it now): each delivery meanwhile carries two `v1=` signatures, so "
        "receivers verifying with either secret accept it while you deploy the new one. "
        "Rolling again ends an earlier overlap. The body is optional."
    ),
    responses={**ok(WebhookEndpointOut, ROLLED_EXAMPLE), **ERROR_RESPONSES, **NOT_FOUND_RESPONSE},
    openapi_extra=openapi_body(RollSecret, ROLL_EXAMPLE, required=False),
)
async def roll_webhook_secret(
    ctx: Context,
    principal: CurrentMerchant,
    endpoint_id: EndpointId,
    params: Annotated[RollSecret, Depends(json_body(RollSecret))],
) -> JSONResponse:
    async with ctx.db.transaction() as session:
        endpoint = await service.roll_secret(
            session, ctx, principal.merchant_id, endpoint_id, expires_in=params.expires_in
        )
        body = present_endpoint(endpoint, with_secret=True)
    return JSONResponse(body)


@router.post(
    ENDPOINTS + "/{endpoint_id}/test",
    summary="Send a test event",
    description=(
        "Queue a `webhook_endpoint.test` event (its `data.object` is this endpoint) for this "
        "endpoint only, whatever its `enabled_events`, signed and retried like every event. "
        "Returns the delivery, whose progress the delivery log shows. No body."
    ),
    responses={
        **ok(WebhookDeliveryOut, TEST_DELIVERY_EXAMPLE),
        **ERROR_RESPONSES,
        **NOT_FOUND_RESPONSE,
        **DISABLED,
    },
)
async def test_webhook_endpoint(
    ctx: Context, principal: CurrentMerchant, endpoint_id: EndpointId
) -> JSONResponse:
    async with ctx.db.transaction() as session:
        delivery, event = await service.send_test_event(session, principal.merchant_id, endpoint_id)
        body = present_delivery(delivery, event.type)
    return JSONResponse(body)


@router.get(
    ENDPOINTS + "/{endpoint_id}/deliveries",
    summary="List an endpoint's deliveries",
    description=(
        "The delivery log, newest first: each event sent to the endpoint with its status, "
        "attempts, last response code, error and duration, and when the next attempt is "
        "due. Filter by `status` or `event`."
    ),
    responses={
        **ok(WebhookDeliveryList, DELIVERY_LIST_EXAMPLE),
        **ERROR_RESPONSES,
        **NOT_FOUND_RESPONSE,
    },
)
async def list_webhook_deliveries(
    ctx: Context,
    principal: CurrentMerchant,
    endpoint_id: EndpointId,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[
        DeliveryStatus | None, Query(description="only deliveries in this status")
    ] = None,
    event: Annotated[str | None, Query(description="only deliveries of this event id")] = None,
) -> JSONResponse:
    async with ctx.db.sessions() as session:
        endpoint = await service.get_endpoint(session, principal.merchant_id, endpoint_id)
        query = repository.deliveries_of(endpoint.id, status=status, event_id=event)
        found = await paginate(session, query, WebhookDelivery.id, page)
        types = await repository.event_types(session, (d.event_id for d in found.items))
    data = [present_delivery(d, types.get(d.event_id, "")) for d in found.items]
    url = f"{ENDPOINTS}/{endpoint.id}/deliveries"
    return JSONResponse(list_object(data, has_more=found.has_more, url=url))


@router.post(
    "/v1/webhook_deliveries/{delivery_id}/redeliver",
    summary="Redeliver an event",
    description=(
        "Send a delivery's event to its endpoint again, now, whatever the delivery's status: "
        "a new delivery (`redelivery_of` names the original) with its own attempts and "
        "retries. The event and its signature scheme are unchanged, so the receiver can "
        "dedupe on the event id. No body."
    ),
    responses={
        **ok(WebhookDeliveryOut, REDELIVERY_EXAMPLE),
        **ERROR_RESPONSES,
        **NOT_FOUND_RESPONSE,
        **DISABLED,
    },
)
async def redeliver_webhook(
    ctx: Context, principal: CurrentMerchant, delivery_id: DeliveryId
) -> JSONResponse:
    async with ctx.db.transaction() as session:
        delivery = await service.redeliver(session, principal.merchant_id, delivery_id)
        types = await repository.event_types(session, [delivery.event_id])
        body: dict[str, Any] = present_delivery(delivery, types.get(delivery.event_id, ""))
    return JSONResponse(body)
