"""Applying the reconciler's events, and reading runs and discrepancies for the page."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.events import Event
from stablegate_common.events.contracts import (
    DiscrepancyFound,
    DiscrepancyResolved,
    ReconciliationRunCompleted,
)
from stablegate_dashboard.reconciliation.models import DiscrepancyView, ReconciliationRunView


async def apply_run(session: AsyncSession, run: ReconciliationRunCompleted) -> None:
    values = run.model_dump(mode="python")
    values["id"] = values.pop("run_id")
    await session.execute(insert(ReconciliationRunView).values(**values).on_conflict_do_nothing())


async def apply_found(session: AsyncSession, event: Event, found: DiscrepancyFound) -> None:
    """Open it; if its resolution arrived first, only fill in what was found."""
    values = {
        "id": event.subject,
        "network": found.network,
        "asset": found.asset,
        "address": found.address,
        "status": "open",
        "ledger_base_units": found.ledger_base_units,
        "chain_base_units": found.chain_base_units,
        "opened_at": event.occurred_at,
    }
    row = insert(DiscrepancyView).values(**values)
    kept = ("ledger_base_units", "chain_base_units", "opened_at")
    await session.execute(
        row.on_conflict_do_update(
            index_elements=[DiscrepancyView.id], set_={k: row.excluded[k] for k in kept}
        )
    )


async def apply_resolved(
    session: AsyncSession, event: Event, resolved: DiscrepancyResolved
) -> None:
    values = {
        "id": event.subject,
        "network": resolved.network,
        "asset": resolved.asset,
        "address": resolved.address,
        "status": "resolved",
        "resolved_at": event.occurred_at,
        "resolved_run_id": resolved.resolved_run_id,
    }
    row = insert(DiscrepancyView).values(**values)
    changed = ("status", "resolved_at", "resolved_run_id")
    await session.execute(
        row.on_conflict_do_update(
            index_elements=[DiscrepancyView.id], set_={k: row.excluded[k] for k in changed}
        )
    )


async def recent_runs(session: AsyncSession, *, limit: int = 30) -> Sequence[ReconciliationRunView]:
    return (
        await session.scalars(
            select(ReconciliationRunView)
            .order_by(ReconciliationRunView.finished_at.desc())
            .limit(limit)
        )
    ).all()


async def discrepancies(
    session: AsyncSession, *, status: str, limit: int = 100
) -> Sequence[DiscrepancyView]:
    order = DiscrepancyView.opened_at if status == "open" else DiscrepancyView.resolved_at
    return (
        await session.scalars(
            select(DiscrepancyView)
            .where(DiscrepancyView.status == status)
            .order_by(order.desc().nulls_last())
            .limit(limit)
        )
    ).all()


async def open_count(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(DiscrepancyView)
            .where(DiscrepancyView.status == "open")
        )
        or 0
    )
