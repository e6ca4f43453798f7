"""Consumer of `transfer.*`: watcher reports into the transfer read model."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.events import Event, parse_payload
from stablegate_common.events.contracts import (
    ChainTransferFields,
    TransferConfirmed,
    TransferDetected,
    TransferReverted,
)
from stablegate_dashboard.transfers import service

CONSUMER = "transfers"
ROUTING_KEYS = ("transfer.*",)

_REPORTS: dict[str, type[ChainTransferFields]] = {
    cls.event_type: cls for cls in (TransferDetected, TransferConfirmed, TransferReverted)
}


async def on_transfer_event(session: AsyncSession, event: Event) -> None:
    kind = _REPORTS.get(event.type)
    if kind is None:
        return
    await service.apply_report(session, event, parse_payload(event, kind))
