"""Consumer of `chain.head`: watcher progress into the chain-head read model."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.events import Event, parse_payload
from stablegate_common.events.contracts import ChainHead
from stablegate_dashboard.chain_heads import service

CONSUMER = "chain-heads"
ROUTING_KEYS = ("chain.head",)


async def on_chain_head(session: AsyncSession, event: Event) -> None:
    if event.type != ChainHead.event_type:
        return
    await service.apply_head(session, event, parse_payload(event, ChainHead))
