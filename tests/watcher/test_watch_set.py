"""The watch-set consumer over the real bus: which announcements it takes, in which form it
stores addresses, and that a redelivered event adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import pytest
from sqlalchemy import select

from stablegate_common.bus import InboxMessage, idempotent
from stablegate_common.core.addresses import display_address
from stablegate_common.core.assets import Network
from stablegate_common.db import Database
from stablegate_common.events import Event, make_event
from stablegate_common.events.contracts import AddressesProvisioned
from stablegate_common.watcher.models import WatchedAddress
from stablegate_common.watcher.watchset import CONSUMER, ROUTING_KEYS, WatchSetConsumer
from tests.fixtures.anvil import fresh_address
from tests.fixtures.bus import BusFactory
from tests.fixtures.watcher import deliver, eventually, intent_created

pytestmark = pytest.mark.asyncio(loop_scope="session")

TRON_ADDRESS = "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"


def provisioned(family: Literal["evm", "tron"], addresses: list[str]) -> Event:
    return make_event(
        AddressesProvisioned(family=family, addresses=addresses, first_index=0),
        producer="gateway",
        subject=family,
        sequence=1,
    )


async def _watched(db: Database) -> dict[str, str]:
    async with db.sessions() as session:
        rows = await session.execute(select(WatchedAddress.address, WatchedAddress.source))
        return {str(a): str(s) for a, s in rows}


async def _inbox_size(db: Database) -> int:
    async with db.sessions() as session:
        return len(list(await session.scalars(select(InboxMessage.event_id))))


async def test_announcements_reach_the_watch_set_through_the_bus(
    bus_factory: BusFactory, watcher_db: Database, network: Network
) -> None:
    consumer_bus = await bus_factory(service="chain-watcher-eth")
    consumer = WatchSetConsumer(network)
    await consumer_bus.consume(
        CONSUMER, ROUTING_KEYS, idempotent(watcher_db, CONSUMER, consumer.handle)
    )
    publisher = await bus_factory(service="gateway")

    pool = [fresh_address(), fresh_address()]
    paid_to = fresh_address()
    evm = provisioned("evm", [display_address("evm", a) for a in pool])  # checksummed
    await publisher.publish(
        [
            evm,
            evm,  # redelivered
            provisioned("tron", [TRON_ADDRESS]),  # another family's watcher takes it
            intent_created(fresh_address(), network="bsc"),  # the BSC watcher's
            intent_created(paid_to),
        ]
    )

    expected = {pool[0]: "provisioned", pool[1]: "provisioned", paid_to: "intent"}

    async def settled() -> bool:
        return await _watched(watcher_db) == expected and await _inbox_size(watcher_db) == 4

    await eventually(settled)


async def test_an_address_already_watched_keeps_its_first_source(
    watcher_db: Database, network: Network
) -> None:
    address = fresh_address()
    await deliver(watcher_db, network, provisioned("evm", [address]))
    await deliver(watcher_db, network, intent_created(address))
    assert await _watched(watcher_db) == {address: "provisioned"}


async def test_the_intent_time_is_used_when_it_precedes_the_event(
    watcher_db: Database, network: Network
) -> None:
    address = fresh_address()
    created = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    await deliver(watcher_db, network, intent_created(address, created_at=created))
    async with watcher_db.sessions() as session:
        row = await session.scalar(select(WatchedAddress))
    assert row is not None
    assert row.announced_at == created
    assert row.backfilled_at is None


async def test_an_invalid_address_fails_the_delivery(
    watcher_db: Database, network: Network
) -> None:
    with pytest.raises(ValueError, match="not an EVM address"):
        await deliver(watcher_db, network, provisioned("evm", ["0x1234"]))
    assert await _watched(watcher_db) == {}
