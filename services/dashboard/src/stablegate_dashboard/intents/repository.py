"""Reads and writes of the intent read models; writes only flush."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_dashboard.db import upsert_if_newer
from stablegate_dashboard.intents.models import IntentEventView, IntentView, TransferClaimView
from stablegate_dashboard.web.pagination import Page, keyset_page


async def store_if_newer(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Store the snapshot unless the row already holds this sequence or a newer one.
    `paid_at` keeps the first time the intent was seen paid, and clears when it is not."""

    def first_paid(row: Insert) -> dict[str, Any]:
        kept = func.coalesce(IntentView.paid_at, row.excluded.paid_at)
        return {"paid_at": case((row.excluded.status == "paid", kept), else_=None)}

    return await upsert_if_newer(session, IntentView, values, ("id",), overrides=first_paid)


async def record_event(session: AsyncSession, values: dict[str, Any]) -> None:
    """Add a timeline entry; a snapshot already recorded (same sequence) is kept."""
    await session.execute(insert(IntentEventView).values(**values).on_conflict_do_nothing())


async def claim_transfers(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = insert(TransferClaimView).values(rows)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["network", "tx_hash", "log_index"],
            set_={"intent_id": stmt.excluded.intent_id, "transfer_id": stmt.excluded.transfer_id},
        )
    )


async def get(session: AsyncSession, intent_id: str) -> IntentView | None:
    return await session.get(IntentView, intent_id)


async def known_ids(session: AsyncSession, intent_ids: Sequence[str]) -> set[str]:
    """Which of these intents the read model holds (so their page exists)."""
    if not intent_ids:
        return set()
    found = await session.scalars(select(IntentView.id).where(IntentView.id.in_(intent_ids)))
    return set(found)


async def timeline(session: AsyncSession, intent_id: str) -> Sequence[IntentEventView]:
    return (
        await session.scalars(
            select(IntentEventView)
            .where(IntentEventView.intent_id == intent_id)
            .order_by(IntentEventView.sequence)
        )
    ).all()


@dataclass(frozen=True)
class IntentFilter:
    query: str | None = None
    status: str | None = None
    network: str | None = None
    asset: str | None = None

    @property
    def active(self) -> bool:
        return any((self.query, self.status, self.network, self.asset))


def matches_query(text: str) -> ColumnElement[bool]:
    """An intent id, a merchant reference, a deposit address or a transaction hash."""
    variants = sorted({text, text.lower()})
    by_tx = select(TransferClaimView.intent_id).where(TransferClaimView.tx_hash.in_(variants))
    return or_(
        IntentView.id == text,
        IntentView.reference == text,
        IntentView.deposit_address.in_(variants),
        IntentView.id.in_(by_tx),
    )


def filtered(wanted: IntentFilter) -> Select[Any]:
    conditions: list[ColumnElement[bool]] = []
    if wanted.query:
        conditions.append(matches_query(wanted.query.strip()))
    for column, value in (
        (IntentView.status, wanted.status),
        (IntentView.network, wanted.network),
        (IntentView.asset, wanted.asset),
    ):
        if value:
            conditions.append(column == value)
    return select(IntentView).where(and_(True, *conditions))


async def search(
    session: AsyncSession,
    wanted: IntentFilter,
    *,
    starting_after: str | None = None,
    ending_before: str | None = None,
    limit: int = 50,
) -> Page[IntentView]:
    return await keyset_page(
        session,
        filtered(wanted),
        IntentView.id,
        starting_after=starting_after,
        ending_before=ending_before,
        limit=limit,
    )


async def list_page(
    session: AsyncSession, *, status: str | None, starting_after: str | None, limit: int
) -> Sequence[IntentView]:
    """Newest first (ids sort by creation time); `limit + 1` rows to tell if more follow."""
    stmt = select(IntentView).order_by(IntentView.id.desc()).limit(limit + 1)
    if status is not None:
        stmt = stmt.where(IntentView.status == status)
    if starting_after is not None:
        stmt = stmt.where(IntentView.id < starting_after)
    return (await session.execute(stmt)).scalars().all()


async def latest_position(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(IntentEventView.position))) or 0)


async def changes_since(
    session: AsyncSession, position: int, *, limit: int = 200
) -> Sequence[tuple[IntentEventView, IntentView]]:
    """Timeline entries after `position` (oldest first), each with its intent's row."""
    rows = await session.execute(
        select(IntentEventView, IntentView)
        .join(IntentView, IntentView.id == IntentEventView.intent_id)
        .where(IntentEventView.position > position)
        .order_by(IntentEventView.position)
        .limit(limit)
    )
    return [(event, intent) for event, intent in rows]
