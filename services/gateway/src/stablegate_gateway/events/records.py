"""Storing one merchant event (what `GET /v1/events` lists and webhooks carry).

The one place a `MerchantEvent` row is made: `events.service` records intent changes
through it (and queues their webhooks), `webhooks.service` the endpoints' own events.
It imports neither, so both can use it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.ids import new_id
from stablegate_gateway.events.models import MerchantEvent


async def store_merchant_event(
    session: AsyncSession,
    *,
    merchant_id: str,
    event_type: str,
    object_id: str,
    sequence: int,
    obj: dict[str, Any],
) -> MerchantEvent:
    """Add the event `{"object": obj}` in the caller's transaction (flushed, not queued
    for delivery: the caller decides who hears of it)."""
    event = MerchantEvent(
        id=new_id("evt"),
        merchant_id=merchant_id,
        type=event_type,
        object_id=object_id,
        sequence=sequence,
        data={"object": obj},
    )
    session.add(event)
    await session.flush()
    return event
