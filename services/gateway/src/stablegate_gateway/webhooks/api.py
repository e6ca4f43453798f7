"""`/v1/webhook_endpoints`: create (the secret is shown once), list, retrieve, delete.
Each request owns its unit of work; the service only flushes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from stablegate_gateway.api.body import json_body, openapi_body
from stablegate_gateway.api.dependencies import Context, CurrentMerchant
from stablegate_gateway.api.errors import ERROR_RESPONSES, NOT_FOUND_RESPONSE
from stablegate_gateway.api.pagination import PageParams, list_object, page_params, paginate
from stablegate_gateway.api.serialization import iso_timestamp
from stablegate_gateway.webhooks import repository, service
from stablegate_gateway.webhooks.models import WebhookEndpoint
from stablegate_gateway.webhooks.schemas import (
    CREATE_EXAMPLE,
    CreateWebhookEndpoint,
    DeletedWebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointOut,
)

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["Webhooks"])

EndpointId = Annotated[
    str, Path(description="the webhook endpoint's id", examples=["we_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4"])
]
ONE_ENDPOINT = {200: {"model": WebhookEndpointOut}, **ERROR_RESPONSES}
LIST_URL = "/v1/webhook_endpoints"


def present_endpoint(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "enabled_events": list(endpoint.enabled_events),
        "status": endpoint.status,
        "description": endpoint.description,
        "created_at": iso_timestamp(endpoint.created_at),
    }
    if with_secret:
        body["secret"] = endpoint.secret
    return body


@router.post(
    "",
    summary="Create a webhook endpoint",
    description=(
        "Register a URL that receives events as signed `POST`s "
        '(`Stablegate-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`). '
        "The response carries the endpoint's `whsec_…` `secret`: store it now, it is never "
        "shown again. URLs resolving to private, loopback or link-local addresses are refused."
    ),
    responses=ONE_ENDPOINT,
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
    return JSONResponse(present_endpoint(endpoint, with_secret=True))


@router.get(
    "",
    summary="List webhook endpoints",
    description="Newest first, paged like every list (`limit`, `starting_after`, `ending_before`).",
    responses={200: {"model": WebhookEndpointList}, **ERROR_RESPONSES},
)
async def list_webhook_endpoints(
    ctx: Context, principal: CurrentMerchant, page: Annotated[PageParams, Depends(page_params)]
) -> JSONResponse:
    async with ctx.db.sessions() as session:
        found = await paginate(
            session, repository.live_endpoints(principal.merchant_id), WebhookEndpoint.id, page
        )
    data = [present_endpoint(e) for e in found.items]
    return JSONResponse(list_object(data, has_more=found.has_more, url=LIST_URL))


@router.get(
    "/{endpoint_id}",
    summary="Retrieve a webhook endpoint",
    description="The endpoint without its secret.",
    responses={**ONE_ENDPOINT, **NOT_FOUND_RESPONSE},
)
async def retrieve_webhook_endpoint(
    ctx: Context, principal: CurrentMerchant, endpoint_id: EndpointId
) -> JSONResponse:
    async with ctx.db.sessions() as session:
        endpoint = await service.get_endpoint(session, principal.merchant_id, endpoint_id)
    return JSONResponse(present_endpoint(endpoint))


@router.delete(
    "/{endpoint_id}",
    summary="Delete a webhook endpoint",
    description="Stops deliveries to the endpoint at once, including pending retries.",
    responses={200: {"model": DeletedWebhookEndpoint}, **ERROR_RESPONSES, **NOT_FOUND_RESPONSE},
)
async def delete_webhook_endpoint(
    ctx: Context, principal: CurrentMerchant, endpoint_id: EndpointId
) -> JSONResponse:
    async with ctx.db.transaction() as session:
        endpoint = await service.delete_endpoint(session, principal.merchant_id, endpoint_id)
    return JSONResponse({"id": endpoint.id, "object": "webhook_endpoint", "deleted": True})
