"""The watch set never misses a payment made before the watcher heard of its address
(DESIGN.md §5): newly announced addresses are searched for in blocks already scanned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from stablegate_common.core.assets import Network
from stablegate_common.db import Database
from stablegate_common.watcher.models import WatchedAddress
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.watcher import (
    CONFIRMATIONS,
    EngineFactory,
    announce,
    deliver,
    intent_created,
    queued_events,
    scan_to_head,
    transfer_rows,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _watched(db: Database) -> list[WatchedAddress]:
    async with db.sessions() as session:
        return list(await session.scalars(select(WatchedAddress).order_by(WatchedAddress.address)))


async def test_address_announced_after_its_payment_was_scanned_is_still_detected(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    engine = await make_engine()
    await engine.resume()
    deposit = fresh_address()
    allocated_at = datetime.now(UTC) - timedelta(seconds=1)
    tx_hash = await anvil.transfer(anvil.usdt, deposit, 9_000_000)
    await anvil.mine(CONFIRMATIONS)
    await scan_to_head(engine)
    assert await transfer_rows(watcher_db) == []  # scanned while nobody watched it
    backfilled_before = (
        REGISTRY.get_sample_value(
            "stablegate_watcher_backfilled_addresses_total", {"network": "ethereum"}
        )
        or 0.0
    )

    await announce(watcher_db, network, [deposit], at=allocated_at)
    [row] = await _watched(watcher_db)
    assert row.backfilled_at is None
    await scan_to_head(engine)

    events = await queued_events(watcher_db, "transfer.detected", "transfer.confirmed")
    assert [(e.type, e.data["tx_hash"], e.sequence) for e in events] == [
        ("transfer.detected", tx_hash, 1),
        ("transfer.confirmed", tx_hash, 2),  # deep enough already
    ]
    [row] = await _watched(watcher_db)
    assert row.backfilled_at is not None
    assert deposit in engine.watch_set
    assert (
        REGISTRY.get_sample_value(
            "stablegate_watcher_backfilled_addresses_total", {"network": "ethereum"}
        )
        == backfilled_before + 1
    )

    # Announcing it again neither backfills nor reports anything twice.
    await announce(watcher_db, network, [deposit])
    await anvil.mine(1)
    await scan_to_head(engine)
    again = await queued_events(watcher_db, "transfer.detected", "transfer.confirmed")
    assert len(again) == 2


async def test_payment_in_the_same_block_as_the_intent_creation_is_detected(
    isolated_anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    """The customer pays within the block the intent was created in, and the watcher scans
    that block before `intent.created` reaches it."""
    anvil = isolated_anvil
    engine = await make_engine()
    await engine.resume()
    deposit = fresh_address()
    await anvil.set_automine(False)
    try:
        # Unrelated traffic and the payment share one block.
        await anvil.transfer(anvil.usdt, fresh_address(), 1, sender=anvil.accounts[2])
        tx_hash = await anvil.transfer(anvil.usdt, deposit, 25_000_000, sender=anvil.accounts[1])
        await anvil.mine(1)
    finally:
        await anvil.set_automine(True)
    block = int((await anvil.receipt(tx_hash))["blockNumber"], 16)
    stamped = await anvil.rpc("eth_getBlockByNumber", hex(block), False)
    created_at = datetime.fromtimestamp(int(stamped["timestamp"], 16), UTC)
    await scan_to_head(engine)
    assert await transfer_rows(watcher_db) == []

    await deliver(watcher_db, network, intent_created(deposit, created_at=created_at))
    await scan_to_head(engine)

    [event] = await queued_events(watcher_db, "transfer.detected")
    assert (event.data["tx_hash"], event.data["block_number"]) == (tx_hash, block)
    [row] = await _watched(watcher_db)
    assert (row.address, row.source) == (deposit, "intent")


async def test_address_announced_before_payment_needs_no_backfill_to_be_seen(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    engine = await make_engine(backfill_blocks=0)
    await engine.resume()
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    await scan_to_head(engine)  # picks the address up
    tx_hash = await anvil.transfer(anvil.usdc, deposit, 5)
    await scan_to_head(engine)
    [event] = await queued_events(watcher_db, "transfer.detected")
    assert event.data["tx_hash"] == tx_hash


async def test_backfill_depth_is_capped_by_configuration(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    """With no kept header as old as the announcement, `backfill_blocks` is the limit:
    a payment beyond it is not searched for (and the cap is what operators tune)."""
    engine = await make_engine(backfill_blocks=2)
    await engine.resume()
    deposit = fresh_address()
    await anvil.transfer(anvil.usdt, deposit, 1_000)
    await anvil.mine(5)
    await scan_to_head(engine)
    await announce(watcher_db, network, [deposit], at=datetime(2020, 1, 1, tzinfo=UTC))
    await scan_to_head(engine)
    assert await transfer_rows(watcher_db) == []
    [row] = await _watched(watcher_db)
    assert row.backfilled_at is not None
