"""Request and response shapes of the webhook-endpoint and webhook-delivery resources.

The request models check shape only; the URL policy and the event types are checked by
`webhooks.service`. Response models document what `webhooks.presenter` builds, and the
examples below are what the OpenAPI document shows.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Events about the endpoints themselves. `webhook_endpoint.disabled` goes to the merchant's
# other endpoints that subscribe to it; `webhook_endpoint.test` only to the endpoint tested.
ENDPOINT_DISABLED = "webhook_endpoint.disabled"
ENDPOINT_TEST = "webhook_endpoint.test"
ENDPOINT_EVENT_TYPES = frozenset({ENDPOINT_DISABLED, ENDPOINT_TEST})
SUBSCRIBABLE_ENDPOINT_EVENTS = frozenset({ENDPOINT_DISABLED})

EndpointStatus = Literal["enabled", "disabled"]
DeliveryStatus = Literal["pending", "succeeded", "failed", "canceled"]

ENDPOINT_ID = "we_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4"
DELIVERY_ID = "whd_01JDQ3M4W6Z0E9T0QJX1N2Y3Z5"
CREATE_EXAMPLE: dict[str, Any] = {
    "url": "https://shop.example.com/stablegate/webhooks",
    "enabled_events": ["payment_intent.paid", "payment_intent.requires_action"],
    "description": "order fulfilment",
}
UPDATE_EXAMPLE: dict[str, Any] = {"disabled": False, "enabled_events": ["*"]}
ROLL_EXAMPLE: dict[str, Any] = {"expires_in": 86_400}
ENDPOINT_EXAMPLE: dict[str, Any] = {
    "id": ENDPOINT_ID,
    "object": "webhook_endpoint",
    "url": "https://shop.example.com/stablegate/webhooks",
    "enabled_events": ["payment_intent.paid", "payment_intent.requires_action"],
    "status": "enabled",
    "disabled_reason": None,
    "description": "order fulfilment",
    "previous_secret_expires_at": None,
    "created_at": "2026-11-27T12:00:00.000000Z",
}
CREATED_EXAMPLE: dict[str, Any] = {
    **ENDPOINT_EXAMPLE,
    # An illustration only: real secrets are 64 random hex characters after the prefix.
    "secret": "whsec_<shown once: 64 hex characters>",
}
ROLLED_EXAMPLE: dict[str, Any] = {
    **CREATED_EXAMPLE,
    "previous_secret_expires_at": "2026-11-28T12:00:00.000000Z",
}
DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": DELIVERY_ID,
    "object": "webhook_delivery",
    "webhook_endpoint": ENDPOINT_ID,
    "event": "evt_01JDQ3M4W6Z0E9T0QJX1N2Y3Z6",
    "event_type": "payment_intent.paid",
    "status": "pending",
    "attempts": 2,
    "response_status_code": 503,
    "last_error": "HTTP 503: upstream unavailable",
    "last_attempt_at": "2026-11-27T12:03:00.000000Z",
    "duration_ms": 412,
    "next_attempt_at": "2026-11-27T12:12:00.000000Z",
    "delivered_at": None,
    "redelivery_of": None,
    "created_at": "2026-11-27T12:00:00.000000Z",
}

_NEW_DELIVERY: dict[str, Any] = {
    "status": "pending",
    "attempts": 0,
    "response_status_code": None,
    "last_error": None,
    "last_attempt_at": None,
    "duration_ms": None,
    "next_attempt_at": "2026-11-27T12:00:00.000000Z",
}
TEST_DELIVERY_EXAMPLE = DELIVERY_EXAMPLE | _NEW_DELIVERY | {"event_type": ENDPOINT_TEST}
REDELIVERY_EXAMPLE = (
    DELIVERY_EXAMPLE
    | _NEW_DELIVERY
    | {"id": "whd_01JDQ3M4W6Z0E9T0QJX1N2Y3Z7", "redelivery_of": DELIVERY_ID}
)
DELIVERY_LIST_EXAMPLE: dict[str, Any] = {
    "object": "list",
    "data": [DELIVERY_EXAMPLE],
    "has_more": False,
    "url": f"/v1/webhook_endpoints/{ENDPOINT_ID}/deliveries",
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


class UpdateWebhookEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": UPDATE_EXAMPLE})

    url: str | None = Field(None, max_length=2048, description="a new URL (same rules)")
    enabled_events: list[str] | None = Field(None, max_length=32)
    description: str | None = Field(None, max_length=500)
    disabled: bool | None = Field(
        None,
        description="`true` stops deliveries; `false` enables an endpoint again (also one "
        "the gateway disabled after three days of failures)",
    )


class RollSecret(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": ROLL_EXAMPLE})

    expires_in: int | None = Field(
        None,
        ge=0,
        description="seconds during which the old secret still signs, beside the new one "
        "(default 86400; 0 ends it now)",
        examples=[86_400],
    )


class WebhookEndpointOut(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": ENDPOINT_EXAMPLE})

    id: str = Field(examples=[ENDPOINT_ID])
    object: Literal["webhook_endpoint"]
    url: str
    enabled_events: list[str]
    status: EndpointStatus
    disabled_reason: str | None = Field(
        description="why the gateway disabled the endpoint, if it did"
    )
    description: str | None
    previous_secret_expires_at: str | None = Field(
        description="after `roll_secret`: until when the replaced secret still signs"
    )
    created_at: str = Field(examples=["2026-11-27T12:00:00.000000Z"])
    secret: str | None = Field(
        None,
        description="`whsec_…` signing secret: in the creation and `roll_secret` responses "
        "only, never again",
    )


class WebhookEndpointList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[WebhookEndpointOut]
    has_more: bool
    url: Literal["/v1/webhook_endpoints"]


class DeletedWebhookEndpoint(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"id": ENDPOINT_ID, "object": "webhook_endpoint", "deleted": True}
        },
    )

    id: str
    object: Literal["webhook_endpoint"]
    deleted: Literal[True]


class WebhookDeliveryOut(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": DELIVERY_EXAMPLE})

    id: str = Field(examples=[DELIVERY_ID])
    object: Literal["webhook_delivery"]
    webhook_endpoint: str = Field(description="the endpoint's id")
    event: str = Field(description="the delivered event's id (`GET /v1/events/{id}`)")
    event_type: str
    status: DeliveryStatus = Field(
        description="`pending` while attempts remain, `succeeded` on a 2xx, `failed` after "
        "the last attempt, `canceled` when the endpoint was deleted or disabled"
    )
    attempts: int = Field(description="attempts made so far")
    response_status_code: int | None = Field(description="the last attempt's HTTP status")
    last_error: str | None = Field(description="what went wrong on the last attempt")
    last_attempt_at: str | None
    duration_ms: int | None = Field(description="the last attempt's time to a response")
    next_attempt_at: str | None = Field(description="when the next attempt is due (pending)")
    delivered_at: str | None
    redelivery_of: str | None = Field(description="the delivery this one manually repeats")
    created_at: str


class WebhookDeliveryList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[WebhookDeliveryOut]
    has_more: bool
    url: str = Field(examples=[f"/v1/webhook_endpoints/{ENDPOINT_ID}/deliveries"])
