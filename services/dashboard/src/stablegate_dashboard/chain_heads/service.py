"""Applying `chain.head` reports to the chain-head read model."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.events import Event
from stablegate_common.events.contracts import ChainHead
from stablegate_dashboard.chain_heads.models import ChainHeadView
from stablegate_dashboard.db import upsert_if_newer


async def apply_head(session: AsyncSession, event: Event, head: ChainHead) -> bool:
    """Keep the newest report per network; False when an older one arrived late."""
    values = {
        "network": head.network,
        "head_block": head.head_block,
        "scanned_block": head.scanned_block,
        "head_timestamp": head.head_timestamp,
        "updated_at": event.occurred_at,
        "sequence": event.sequence,
    }
    return await upsert_if_newer(session, ChainHeadView, values, ("network",))
