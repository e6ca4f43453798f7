"""The ledger's consumers: intent snapshots and outgoing-transfer updates (what the
gateway decided) and transfer reports (what the chains said). Each event is applied in
one transaction with its inbox claim (`idempotent`), so a redelivery changes nothing."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.bus import Bus, SessionHandler, idempotent
from stablegate_common.core.assets import AssetRegistry
from stablegate_common.db import Database
from stablegate_common.events import Event, parse_payload
from stablegate_common.events.contracts import (
    IntentCreated,
    IntentSnapshot,
    IntentUpdated,
    OutgoingTransferUpdated,
    TransferConfirmed,
    TransferDetected,
    TransferReverted,
)
from stablegate_common.logging import intent_id_var
from stablegate_reconciler.ledger import service

INTENTS_CONSUMER = "ledger-intents"
TRANSFERS_CONSUMER = "ledger-transfers"
OUTGOING_CONSUMER = "ledger-outgoing"

_SNAPSHOTS: dict[str, type[IntentSnapshot]] = {
    IntentCreated.event_type: IntentCreated,
    IntentUpdated.event_type: IntentUpdated,
}
_TRANSFERS = {
    cls.event_type: cls for cls in (TransferDetected, TransferConfirmed, TransferReverted)
}


async def on_intent_event(session: AsyncSession, event: Event) -> None:
    kind = _SNAPSHOTS.get(event.type)
    if kind is None:
        return  # another intent.* event this consumer has no use for
    snapshot = parse_payload(event, kind)
    token = intent_id_var.set(snapshot.intent_id)  # every log line of this work names it
    try:
        await service.apply_intent_snapshot(session, event, snapshot)
    finally:
        intent_id_var.reset(token)


def transfer_handler(registry: AssetRegistry) -> SessionHandler:
    async def on_transfer_event(session: AsyncSession, event: Event) -> None:
        kind = _TRANSFERS.get(event.type)
        if kind is None:
            return
        await service.record_chain_transfer(session, event, parse_payload(event, kind), registry)

    return on_transfer_event


def outgoing_handler(registry: AssetRegistry) -> SessionHandler:
    async def on_outgoing_event(session: AsyncSession, event: Event) -> None:
        if event.type != OutgoingTransferUpdated.event_type:
            return
        update = parse_payload(event, OutgoingTransferUpdated)
        await service.apply_outgoing_transfer(session, event, update, registry)

    return on_outgoing_event


async def start_consumers(bus: Bus, db: Database, registry: AssetRegistry) -> None:
    await bus.consume(
        INTENTS_CONSUMER, ["intent.*"], idempotent(db, INTENTS_CONSUMER, on_intent_event)
    )
    await bus.consume(
        TRANSFERS_CONSUMER,
        ["transfer.*"],
        idempotent(db, TRANSFERS_CONSUMER, transfer_handler(registry)),
    )
    await bus.consume(
        OUTGOING_CONSUMER,
        [OutgoingTransferUpdated.event_type],
        idempotent(db, OUTGOING_CONSUMER, outgoing_handler(registry)),
    )
