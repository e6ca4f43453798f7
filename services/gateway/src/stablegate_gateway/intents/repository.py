"""Reads and writes of payment intents, and the transfers and heads shown with them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.transfers.models import Transfer


@dataclass(frozen=True)
class IntentFilters:
    status: str | None = None
    network: str | None = None
    reference: str | None = None
    created_gte: datetime | None = None
    created_lte: datetime | None = None


async def add(session: AsyncSession, intent: PaymentIntent) -> None:
    session.add(intent)
    await session.flush()


async def get(
    session: AsyncSession, merchant_id: str, intent_id: str, *, for_update: bool = False
) -> PaymentIntent | None:
    query = select(PaymentIntent).where(
        PaymentIntent.id == intent_id, PaymentIntent.merchant_id == merchant_id
    )
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


def list_query(merchant_id: str, filters: IntentFilters) -> Select[PaymentIntent]:
    query = select(PaymentIntent).where(PaymentIntent.merchant_id == merchant_id)
    if filters.status is not None:
        query = query.where(PaymentIntent.status == filters.status)
    if filters.network is not None:
        query = query.where(PaymentIntent.network == filters.network)
    if filters.reference is not None:
        query = query.where(PaymentIntent.reference == filters.reference)
    if filters.created_gte is not None:
        query = query.where(PaymentIntent.created_at >= filters.created_gte)
    if filters.created_lte is not None:
        query = query.where(PaymentIntent.created_at <= filters.created_lte)
    return query


async def transfers_of(
    session: AsyncSession, intent_ids: Sequence[str]
) -> dict[str, list[Transfer]]:
    """Each intent's transfers in chain order (one query for a whole page)."""
    found: dict[str, list[Transfer]] = defaultdict(list)
    if not intent_ids:
        return found
    rows = await session.scalars(
        select(Transfer)
        .where(Transfer.intent_id.in_(intent_ids))
        .order_by(Transfer.block_number, Transfer.log_index, Transfer.id)
    )
    for transfer in rows:
        if transfer.intent_id is not None:
            found[transfer.intent_id].append(transfer)
    return found
