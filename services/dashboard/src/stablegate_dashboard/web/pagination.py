"""Keyset pagination of the list pages: newest first on one unique, sortable column,
with `starting_after` (older) and `ending_before` (newer) cursors like the public API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

T = TypeVar("T")

PAGE_SIZE = 50


@dataclass
class Page(Generic[T]):
    items: list[T]
    has_older: bool = False
    has_newer: bool = False
    cursors: list[Any] = field(default_factory=list)

    @property
    def first_cursor(self) -> Any:
        return self.cursors[0] if self.cursors else None

    @property
    def last_cursor(self) -> Any:
        return self.cursors[-1] if self.cursors else None


async def keyset_page(
    session: AsyncSession,
    stmt: Select[Any],
    key: InstrumentedAttribute[Any],
    *,
    starting_after: Any = None,
    ending_before: Any = None,
    limit: int = PAGE_SIZE,
) -> Page[Any]:
    """One page of `stmt` (selecting a single entity) ordered by `key` descending."""
    if ending_before is not None:
        rows = await _fetch(session, stmt.where(key > ending_before).order_by(key.asc()), limit)
        items = list(reversed(rows[:limit]))
        return Page(items, has_older=True, has_newer=len(rows) > limit, cursors=_keys(items, key))
    if starting_after is not None:
        stmt = stmt.where(key < starting_after)
    rows = await _fetch(session, stmt.order_by(key.desc()), limit)
    items = rows[:limit]
    return Page(
        items,
        has_older=len(rows) > limit,
        has_newer=starting_after is not None,
        cursors=_keys(items, key),
    )


async def _fetch(session: AsyncSession, stmt: Select[Any], limit: int) -> list[Any]:
    result: Sequence[Any] = (await session.execute(stmt.limit(limit + 1))).scalars().all()
    return list(result)


def _keys(items: list[Any], key: InstrumentedAttribute[Any]) -> list[Any]:
    return [getattr(item, key.key) for item in items]
