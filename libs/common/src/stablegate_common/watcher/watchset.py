"""The consumer that fills the watch set from the gateway's announcements:
`address.provisioned` (addresses derived ahead of need, for this network's family) and
`intent.created` (the intent's deposit address, for this network or, when the service
passes them, the other networks of its family).

Ethereum and BSC share addresses (one `evm` pool), so a payment to an Ethereum intent's
address may arrive on BSC. Each EVM watcher therefore watches the deposit addresses of
every EVM intent: `address.provisioned` alone is not enough, because a batch provisioned
before a watcher's queue existed is never delivered to it, while `intent.created` names
the address again, with its allocation time for the backfill.

It writes `watched_addresses` only. A new row has `backfilled_at` NULL, and that row is
the hand-off to the scanner: whichever replica holds the scanner lock picks it up at the
start of its next tick, adds the address to its in-memory set and searches the blocks it
already scanned. The bus hands an event to any one replica, so memory of the consuming
process would not reach the scanner on another one; the database does, on every replica.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.addresses import canonical_address
from stablegate_common.core.assets import Network
from stablegate_common.events import Event, parse_payload
from stablegate_common.events.contracts import AddressesProvisioned, IntentCreated
from stablegate_common.watcher import repository

log = logging.getLogger(__name__)

CONSUMER = "watch-set"
ROUTING_KEYS = (AddressesProvisioned.event_type, IntentCreated.event_type)


class WatchSetConsumer:
    """`handle(session, event)` for `idempotent(db, CONSUMER, consumer.handle)`."""

    def __init__(self, network: Network, family_networks: Collection[str] = ()) -> None:
        """`family_networks`: networks sharing this one's addresses whose intents' deposit
        addresses are watched too (this network's own always are)."""
        self.network = network
        self.intent_networks = frozenset({network.name, *family_networks})

    async def handle(self, session: AsyncSession, event: Event) -> None:
        if event.type == AddressesProvisioned.event_type:
            provisioned = parse_payload(event, AddressesProvisioned)
            if provisioned.family != self.network.family:
                return
            await self._add(session, provisioned.addresses, "provisioned", event.occurred_at)
        elif event.type == IntentCreated.event_type:
            intent = parse_payload(event, IntentCreated)
            if intent.network not in self.intent_networks:
                return
            # The address can be paid from the moment it was allocated, which may precede
            # the event's own timestamp.
            since = min(intent.created_at, event.occurred_at)
            await self._add(session, [intent.deposit_address], "intent", since)
        else:
            log.warning("unexpected event type ignored", extra={"event_type": event.type})

    async def _add(
        self, session: AsyncSession, addresses: list[str], source: str, announced_at: datetime
    ) -> None:
        canonical = [canonical_address(self.network.family, a) for a in addresses]
        added = await repository.add_watched(
            session, self.network.name, canonical, source=source, announced_at=announced_at
        )
        if added:
            log.info(
                "addresses added to the watch set",
                extra={"network": self.network.name, "count": len(added), "source": source},
            )
