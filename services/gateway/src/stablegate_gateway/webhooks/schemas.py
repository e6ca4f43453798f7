"""Request and response shapes of the webhook-endpoints resource.

The request model checks shape only; the URL policy and the event types are checked by
`webhooks.service`. Response models document what `webhooks.api` builds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CREATE_EXAMPLE: dict[str, Any] = {
    "url": "https://shop.example.com/stablegate/webhooks",
    "enabled_events": ["payment_intent.paid", "payment_intent.requires_action"],
    "description": "order fulfilment",
}


class CreateWebhookEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": CREATE_EXAMPLE})

    url: str = Field(
        max_length=2048,
        description="https (or http) URL that receives the events; must resolve to a "
        "public address",
    )
    enabled_events: list[str] | None = Field(
        None,
        max_length=32,
        description='event types to send, or ["*"] (the default) for all',
        examples=[["payment_intent.paid"]],
    )
    description: str | None = Field(None, max_length=500)


class WebhookEndpointOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(examples=["we_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4"])
    object: Literal["webhook_endpoint"]
    url: str
    enabled_events: list[str]
    status: Literal["enabled", "disabled"]
    description: str | None
    created_at: str = Field(examples=["2026-11-27T12:00:00.000000Z"])
    secret: str | None = Field(
        None,
        description="`whsec_…` signing secret: in the creation response only, never again",
    )


class WebhookEndpointList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[WebhookEndpointOut]
    has_more: bool
    url: Literal["/v1/webhook_endpoints"]


class DeletedWebhookEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    object: Literal["webhook_endpoint"]
    deleted: Literal[True]
