"""`chain.head` from the watchers: keep each network's latest head for confirmation counts
and for the watcher-lag figures of `GET /v1/networks`."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.events import Event, parse_payload
from stablegate_common.events.contracts import ChainHead
from stablegate_gateway.networks import repository

log = logging.getLogger(__name__)

CONSUMER = "network-heads"
ROUTING_KEYS = ("chain.head",)


async def on_chain_head(session: AsyncSession, event: Event) -> None:
    head = parse_payload(event, ChainHead)
    applied = await repository.save_head_if_newer(
        session,
        network=head.network,
        head_block=head.head_block,
        scanned_block=head.scanned_block,
        head_timestamp=head.head_timestamp,
        observed_at=event.occurred_at,
    )
    if not applied:
        log.debug("older chain head ignored", extra={"network": head.network})
