"""Webhook endpoints (create, read, delete) and the enqueueing of deliveries.

An endpoint's `whsec_` secret is generated here and handed back once, in the creation
response; afterwards it is only read to sign. Deleting an endpoint cancels its pending
deliveries in the same transaction, so nothing more is sent to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.errors import InvalidRequest, NotFound
from stablegate_common.core.ids import new_id
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.events.models import MerchantEvent
from stablegate_gateway.events.schemas import EVENT_TYPES
from stablegate_gateway.webhooks import repository
from stablegate_gateway.webhooks.models import WebhookDelivery, WebhookEndpoint
from stablegate_gateway.webhooks.signing import new_secret
from stablegate_gateway.webhooks.urls import check_webhook_url

MAX_ENABLED_EVENTS = 32


def normalise_enabled_events(enabled_events: Sequence[str] | None) -> list[str]:
    """`["*"]` by default; otherwise known types only, without duplicates, order kept."""
    if enabled_events is None:
        return [repository.ALL_EVENTS]
    if not enabled_events:
        raise InvalidRequest(
            'enabled_events must list at least one event type, or ["*"] for all',
            param="enabled_events",
        )
    if len(enabled_events) > MAX_ENABLED_EVENTS:
        raise InvalidRequest(
            f"enabled_events lists at most {MAX_ENABLED_EVENTS} types", param="enabled_events"
        )
    unknown = [t for t in enabled_events if t != repository.ALL_EVENTS and t not in EVENT_TYPES]
    if unknown:
        raise InvalidRequest(
            f"unknown event type {unknown[0]!r} (known: *, {', '.join(sorted(EVENT_TYPES))})",
            param="enabled_events",
        )
    return list(dict.fromkeys(enabled_events))


async def create_endpoint(
    session: AsyncSession,
    ctx: GatewayContext,
    merchant_id: str,
    *,
    url: str,
    enabled_events: Sequence[str] | None = None,
    description: str | None = None,
) -> WebhookEndpoint:
    """Validate and store an endpoint; the returned object still carries its secret."""
    events = normalise_enabled_events(enabled_events)
    checked_url = await check_webhook_url(
        url, allow_private=ctx.settings.gateway.webhook_allow_private_urls
    )
    endpoint = WebhookEndpoint(
        id=new_id("we"),
        merchant_id=merchant_id,
        url=checked_url,
        secret=new_secret(),
        enabled_events=events,
        status="enabled",
        description=description,
        created_at=datetime.now(UTC),
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get_endpoint(
    session: AsyncSession, merchant_id: str, endpoint_id: str
) -> WebhookEndpoint:
    endpoint = await repository.get_live_endpoint(session, merchant_id, endpoint_id)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}", param="id")
    return endpoint


async def delete_endpoint(
    session: AsyncSession, merchant_id: str, endpoint_id: str
) -> WebhookEndpoint:
    """Soft-delete (the delivery log keeps its endpoint) and cancel pending deliveries."""
    endpoint = await repository.get_live_endpoint(session, merchant_id, endpoint_id, lock=True)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}", param="id")
    endpoint.deleted_at = datetime.now(UTC)
    endpoint.status = "disabled"
    await session.flush()
    await repository.cancel_pending_deliveries(session, endpoint.id)
    return endpoint


async def enqueue_deliveries(session: AsyncSession, event: MerchantEvent) -> int:
    """One pending delivery per endpoint subscribed to the event; due at once."""
    endpoint_ids = await repository.subscribed_endpoint_ids(session, event.merchant_id, event.type)
    for endpoint_id in endpoint_ids:
        session.add(
            WebhookDelivery(
                id=new_id("whd"),
                endpoint_id=endpoint_id,
                event_id=event.id,
                status="pending",
                attempts=0,
            )
        )
    if endpoint_ids:
        await session.flush()
    return len(endpoint_ids)
