"""Reads and writes of the intent read model; writes only flush."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_dashboard.intents.models import IntentView


async def upsert_if_newer(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Store the snapshot unless the row already holds this sequence or a newer one."""
    row = insert(IntentView).values(**values)
    stmt = row.on_conflict_do_update(
        index_elements=[IntentView.id],
        set_={k: row.excluded[k] for k in values if k != "id"},
        where=IntentView.sequence < row.excluded.sequence,
    ).returning(IntentView.id)
    return (await session.execute(stmt)).first() is not None


async def get(session: AsyncSession, intent_id: str) -> IntentView | None:
    return await session.get(IntentView, intent_id)


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
