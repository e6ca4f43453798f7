"""Queries over webhook endpoints and deliveries (no business rules here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Select, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_gateway.events.models import MerchantEvent
from stablegate_gateway.webhooks.models import WebhookDelivery, WebhookEndpoint

ALL_EVENTS = "*"


def live_endpoints(merchant_id: str, *, status: str | None = None) -> Select[WebhookEndpoint]:
    """A merchant's endpoints that were not deleted, for listing (newest first by id)."""
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.merchant_id == merchant_id, WebhookEndpoint.deleted_at.is_(None)
    )
    if status is not None:
        query = query.where(WebhookEndpoint.status == status)
    return query


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


async def cancel_pending_deliveries(
    session: AsyncSession, endpoint_id: str, reason: str = "endpoint deleted"
) -> int:
    result = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
        .values(status="canceled", last_error=reason, locked_until=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def deliveries_of(
    endpoint_id: str, *, status: str | None = None, event_id: str | None = None
) -> Select[WebhookDelivery]:
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if event_id is not None:
        query = query.where(WebhookDelivery.event_id == event_id)
    return query


async def get_delivery(
    session: AsyncSession, merchant_id: str, delivery_id: str
) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
    """A delivery to one of the merchant's endpoints that were not deleted."""
    row = (
        await session.execute(
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookEndpoint.merchant_id == merchant_id,
                WebhookEndpoint.deleted_at.is_(None),
            )
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def event_types(session: AsyncSession, event_ids: Iterable[str]) -> dict[str, str]:
    ids = list(set(event_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(MerchantEvent.id, MerchantEvent.type).where(MerchantEvent.id.in_(ids))
    )
    return {row[0]: row[1] for row in rows}


async def delivered_since(session: AsyncSession, endpoint_id: str, since: datetime) -> bool:
    """Did the endpoint accept any delivery at or after `since`?"""
    found = await session.scalar(
        select(
            exists().where(
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.status == "succeeded",
                WebhookDelivery.delivered_at >= since,
            )
        )
    )
    return bool(found)
