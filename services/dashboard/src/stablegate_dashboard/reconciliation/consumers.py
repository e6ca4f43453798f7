"""Consumer of `reconciliation.*`: runs and discrepancies into their read models."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.events import Event, parse_payload
from stablegate_common.events.contracts import (
    DiscrepancyFound,
    DiscrepancyResolved,
    ReconciliationRunCompleted,
)
from stablegate_dashboard.reconciliation import service

CONSUMER = "reconciliation"
ROUTING_KEYS = ("reconciliation.*",)


async def on_reconciliation_event(session: AsyncSession, event: Event) -> None:
    if event.type == ReconciliationRunCompleted.event_type:
        await service.apply_run(session, parse_payload(event, ReconciliationRunCompleted))
    elif event.type == DiscrepancyFound.event_type:
        await service.apply_found(session, event, parse_payload(event, DiscrepancyFound))
    elif event.type == DiscrepancyResolved.event_type:
        await service.apply_resolved(session, event, parse_payload(event, DiscrepancyResolved))
