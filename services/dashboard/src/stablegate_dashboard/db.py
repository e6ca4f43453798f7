"""The declarative base of the dashboard's read-model tables, and the one write every
event-carried row uses: keep the newest version by the event's sequence.

A metadata of its own rather than `stablegate_common.db.Base`: table names are only unique
within a service's schema (the gateway also has `transfers`), and several services'
models are loaded in one process by tests and tools.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from stablegate_common.db import NAMING


class DashboardBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


async def upsert_if_newer(
    session: AsyncSession,
    model: type[DashboardBase],
    values: Mapping[str, Any],
    key: Sequence[str],
    *,
    overrides: Callable[[Insert], dict[str, Any]] | None = None,
) -> bool:
    """Insert the row, or update it when `values["sequence"]` is newer than the stored
    one (queues do not order events across producers). False when an older version
    arrived late and nothing changed. `overrides` replaces some updated columns with
    expressions over the stored row and `excluded`."""
    row = insert(model).values(**values)
    updates: dict[str, Any] = {k: row.excluded[k] for k in values if k not in key}
    if overrides is not None:
        updates.update(overrides(row))
    table = model.__table__
    stmt = row.on_conflict_do_update(
        index_elements=list(key),
        set_=updates,
        where=table.c.sequence < row.excluded.sequence,
    ).returning(table.c[key[0]])
    return (await session.execute(stmt)).first() is not None
