"""Queries over webhook endpoints and deliveries (no business rules here)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_gateway.webhooks.models import WebhookDelivery, WebhookEndpoint

ALL_EVENTS = "*"


def live_endpoints(merchant_id: str) -> Select[WebhookEndpoint]:
    """A merchant's endpoints that were not deleted, for listing (newest first by id)."""
    return select(WebhookEndpoint).where(
        WebhookEndpoint.merchant_id == merchant_id, WebhookEndpoint.deleted_at.is_(None)
    )


async def get_live_endpoint(
    session: AsyncSession, merchant_id: str, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpoint | None:
    query = live_endpoints(merchant_id).where(WebhookEndpoint.id == endpoint_id)
    if lock:
        query = query.with_for_update()
    endpoint: WebhookEndpoint | None = await session.scalar(query)
    return endpoint


async def subscribed_endpoint_ids(
    session: AsyncSession, merchant_id: str, event_type: str
) -> Sequence[str]:
    """Enabled endpoints of the merchant whose `enabled_events` include the type or `*`."""
    result = await session.scalars(
        select(WebhookEndpoint.id)
        .where(
            WebhookEndpoint.merchant_id == merchant_id,
            WebhookEndpoint.deleted_at.is_(None),
            WebhookEndpoint.status == "enabled",
            WebhookEndpoint.enabled_events.overlap([ALL_EVENTS, event_type]),
        )
        .order_by(WebhookEndpoint.id)
    )
    return result.all()


async def cancel_pending_deliveries(session: AsyncSession, endpoint_id: str) -> int:
    result = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
        .values(status="canceled", last_error="endpoint deleted", locked_until=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)
