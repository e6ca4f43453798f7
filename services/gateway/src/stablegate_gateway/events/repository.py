"""Reads of the merchant event stream (`GET /v1/events`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_gateway.events.models import MerchantEvent


async def get(session: AsyncSession, merchant_id: str, event_id: str) -> MerchantEvent | None:
    return await session.scalar(
        select(MerchantEvent).where(
            MerchantEvent.id == event_id, MerchantEvent.merchant_id == merchant_id
        )
    )


def list_query(
    merchant_id: str,
    *,
    event_types: frozenset[str] | None = None,
    object_id: str | None = None,
    created_gte: datetime | None = None,
    created_lte: datetime | None = None,
) -> Select[MerchantEvent]:
    query = select(MerchantEvent).where(MerchantEvent.merchant_id == merchant_id)
    if event_types is not None:
        query = query.where(MerchantEvent.type.in_(sorted(event_types)))
    if object_id is not None:
        query = query.where(MerchantEvent.object_id == object_id)
    if created_gte is not None:
        query = query.where(MerchantEvent.created_at >= created_gte)
    if created_lte is not None:
        query = query.where(MerchantEvent.created_at <= created_lte)
    return query
