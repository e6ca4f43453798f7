"""The public webhook-endpoint and webhook-delivery objects, built in one place for the
API and for the events about endpoints (`webhook_endpoint.disabled`, `.test`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stablegate_gateway.api.serialization import iso_timestamp
from stablegate_gateway.webhooks.models import WebhookDelivery, WebhookEndpoint


def present_endpoint(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    """The endpoint; its `secret` only when just created or rolled (shown once)."""
    body: dict[str, Any] = {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "enabled_events": list(endpoint.enabled_events),
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason,
        "description": endpoint.description,
        "previous_secret_expires_at": _maybe(endpoint.previous_secret_expires_at),
        "created_at": iso_timestamp(endpoint.created_at),
    }
    if with_secret:
        body["secret"] = endpoint.secret
    return body


def present_delivery(delivery: WebhookDelivery, event_type: str) -> dict[str, Any]:
    pending = delivery.status == "pending"
    return {
        "id": delivery.id,
        "object": "webhook_delivery",
        "webhook_endpoint": delivery.endpoint_id,
        "event": delivery.event_id,
        "event_type": event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "response_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "last_attempt_at": _maybe(delivery.last_attempt_at),
        "duration_ms": delivery.last_duration_ms,
        "next_attempt_at": _maybe(delivery.next_attempt_at) if pending else None,
        "delivered_at": _maybe(delivery.delivered_at),
        "redelivery_of": delivery.redelivery_of,
        "created_at": iso_timestamp(delivery.created_at),
    }


def _maybe(value: datetime | None) -> str | None:
    return None if value is None else iso_timestamp(value)
