"""`transfer.detected|confirmed|reverted` from the watchers, into `transfers.service`.

One queue for the three: queues do not order events anyway, so the per-transfer
sequence orders them, and one consumer keeps one inbox for all of a transfer's events.
The handler runs inside `stablegate_common.bus.idempotent`, which owns the transaction
(inbox claim + changes, then ack after commit).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.bus import Bus, SessionHandler, idempotent
from stablegate_common.events import Event, parse_payload
from stablegate_common.events.contracts import (
    ChainTransferFields,
    TransferConfirmed,
    TransferDetected,
    TransferReverted,
)
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.transfers.service import ChainState, ChainTransfer, apply_chain_transfer

CONSUMER = "transfers"
PAYLOADS: dict[str, tuple[ChainState, type[ChainTransferFields]]] = {
    TransferDetected.event_type: ("detected", TransferDetected),
    TransferConfirmed.event_type: ("confirmed", TransferConfirmed),
    TransferReverted.event_type: ("reverted", TransferReverted),
}
ROUTING_KEYS = tuple(PAYLOADS)


def transfer_handler(ctx: GatewayContext) -> SessionHandler:
    """The session handler for `idempotent(db, CONSUMER, …)`."""

    async def on_transfer(session: AsyncSession, event: Event) -> None:
        state, payload_type = PAYLOADS[event.type]
        fields = parse_payload(event, payload_type)
        fact = ChainTransfer.parse(ctx, state, fields, event.sequence)
        await apply_chain_transfer(session, ctx, fact)

    return on_transfer


async def consume_transfers(ctx: GatewayContext, bus: Bus) -> None:
    await bus.consume(CONSUMER, ROUTING_KEYS, idempotent(ctx.db, CONSUMER, transfer_handler(ctx)))
