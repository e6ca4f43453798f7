"""The deposit-address pool: derive ahead of need, allocate one address per intent.
Cooling an ended intent's address is `intents.transitions.start_cooling`.

No two intents ever hold the same address: allocation locks one free row with `FOR
UPDATE SKIP LOCKED`, and derivation runs under a per-family advisory lock, with unique
(family, index) and (family, address) constraints as the backstop. Every derived batch is
announced with an `address.provisioned` outbox event in the same transaction, so watchers
learn an address no later than the intent that uses it, and usually long before.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.bus import add_to_outbox
from stablegate_common.core.assets import Family, Network
from stablegate_common.core.errors import InvalidRequest, ServiceUnavailable
from stablegate_common.events import make_event
from stablegate_common.events.contracts import AddressesProvisioned
from stablegate_common.hd import AddressDeriver, derive_addresses
from stablegate_gateway.addresses import repository
from stablegate_gateway.addresses.models import DepositAddress
from stablegate_gateway.context import GatewayContext

log = logging.getLogger(__name__)

PRODUCER = "gateway"


async def allocate(
    session: AsyncSession, ctx: GatewayContext, network: Network, *, intent_id: str, now: datetime
) -> DepositAddress:
    """Take a free address of the network's family for `intent_id` (deriving more if the
    pool ran dry); the caller's transaction keeps it locked until commit."""
    address = await repository.take_free(
        session, network.family, intent_id=intent_id, network=network.name, now=now
    )
    if address is None:
        address = await _provision_and_take(session, ctx, network, intent_id=intent_id, now=now)
    return address


async def ensure_pool(session: AsyncSession, ctx: GatewayContext, family: Family) -> int:
    """Derive addresses until `address_pool_min_free` are free; return how many were
    derived. A family without a configured xpub is skipped."""
    deriver = ctx.deriver(family)
    if deriver is None:
        return 0
    await repository.lock_pool(session, ctx.db.schema, family)
    missing = ctx.settings.gateway.address_pool_min_free - await repository.count_free(
        session, family
    )
    derived = 0
    while derived < missing:
        derived += await _derive_batch(session, ctx, deriver)
    if derived:
        log.info("address pool topped up", extra={"family": family, "derived": derived})
    return derived


async def _provision_and_take(
    session: AsyncSession, ctx: GatewayContext, network: Network, *, intent_id: str, now: datetime
) -> DepositAddress:
    deriver = ctx.deriver(network.family)
    if deriver is None:
        raise InvalidRequest(
            f"Payments on {network.name} are not enabled on this gateway.",
            param="network",
            code="network_unavailable",
        )
    await repository.lock_pool(session, ctx.db.schema, network.family)
    # Whoever held the lock before us may have just committed a fresh batch.
    address = await repository.take_free(
        session, network.family, intent_id=intent_id, network=network.name, now=now
    )
    if address is None:
        log.warning(
            "address pool ran dry, deriving on the request path", extra={"family": network.family}
        )
        await _derive_batch(session, ctx, deriver)
        address = await repository.take_free(
            session, network.family, intent_id=intent_id, network=network.name, now=now
        )
    if address is None:  # pragma: no cover - the batch we just derived is ours alone
        raise ServiceUnavailable("No deposit address is available; retry shortly.")
    return address


async def _derive_batch(session: AsyncSession, ctx: GatewayContext, deriver: AddressDeriver) -> int:
    """Derive, store and announce the next batch of the deriver's family (lock held)."""
    count = ctx.settings.gateway.address_pool_batch
    first = await repository.next_index(session, deriver.family)
    # Derivation is CPU work: off the event loop, in a process of its own where the
    # service has one (a thread would hold the GIL for the requests' every I/O wake-up),
    # else in the loop's default thread pool.
    addresses = await asyncio.get_running_loop().run_in_executor(
        ctx.derivation_pool, derive_addresses, deriver.xpub, deriver.family, first, count
    )
    await repository.insert_derived(session, deriver.family, first, addresses)
    payload = AddressesProvisioned(family=deriver.family, addresses=addresses, first_index=first)
    add_to_outbox(
        session, make_event(payload, producer=PRODUCER, subject=deriver.family, sequence=first)
    )
    return count
