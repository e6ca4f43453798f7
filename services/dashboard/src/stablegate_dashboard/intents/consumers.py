"""Consumer of `intent.*`: the gateway's snapshots into the intent read model."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.events import Event, parse_payload
from stablegate_common.events.contracts import IntentCreated, IntentSnapshot, IntentUpdated
from stablegate_dashboard.intents import service

CONSUMER = "intents"
ROUTING_KEYS = ("intent.*",)

_SNAPSHOTS: dict[str, type[IntentSnapshot]] = {
    IntentCreated.event_type: IntentCreated,
    IntentUpdated.event_type: IntentUpdated,
}


async def on_intent_event(session: AsyncSession, event: Event) -> None:
    kind = _SNAPSHOTS.get(event.type)
    if kind is None:
        return
    await service.apply_snapshot(session, event, parse_payload(event, kind))
