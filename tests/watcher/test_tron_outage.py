"""A Tron node that goes away and comes back, under the running scanner loop: the watcher
reports itself not ready for the whole outage, then catches up with every transfer made
meanwhile recorded once and confirmed once."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from devnet.tron import TronDevnet
from stablegate_common.core.assets import Network
from stablegate_common.db import Database
from stablegate_common.watcher import ScannerLoop
from tests.fixtures.tron import fresh_tron_account
from tests.fixtures.tron_watcher import TronEngineFactory
from tests.fixtures.watcher import announce, eventually, queued_events, transfer_rows
from tests.watcher.test_runner import _ready, running

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _not_ready(loop: ScannerLoop) -> bool:
    return not await _ready(loop)


async def _events(db: Database, kind: str) -> Counter[str]:
    return Counter(e.subject for e in await queued_events(db, kind))


@pytest.mark.parametrize("mode", ["503", "refuse"])
async def test_an_outage_is_not_ready_then_nothing_is_missed_or_counted_twice(
    tron_chain: TronDevnet,
    make_tron_engine: TronEngineFactory,
    tron_watcher_db: Database,
    tron_network: Network,
    mode: str,
) -> None:
    loop = ScannerLoop(make_tron_engine())
    deposit = fresh_tron_account().address
    await announce(tron_watcher_db, tron_network, [deposit])
    async with running(loop):
        await eventually(lambda: _ready(loop))
        before = tron_chain.transfer(0, deposit, 1_000_000)
        subject = f"tron:{before.txid}:0"

        async def seen() -> bool:
            return subject in await _events(tron_watcher_db, "transfer.detected")

        await eventually(seen)

        tron_chain.down(mode)
        try:
            await eventually(lambda: _not_ready(loop))
            # The chain moves on while the watcher cannot see it.
            during = [tron_chain.transfer(i, deposit, 2_000_000 + i) for i in range(3)]
            tron_chain.mine(5)
            await asyncio.sleep(1.0)
            assert not await _ready(loop)
            assert loop.node_failing
        finally:
            tron_chain.up()

        await eventually(lambda: _ready(loop))
        tron_chain.mine(20)  # solidify everything
        subjects = {f"tron:{s.txid}:0" for s in (before, *during)}

        async def all_confirmed() -> bool:
            return set(await _events(tron_watcher_db, "transfer.confirmed")) == subjects

        await eventually(all_confirmed)

    detected = await _events(tron_watcher_db, "transfer.detected")
    confirmed = await _events(tron_watcher_db, "transfer.confirmed")
    assert detected == confirmed == dict.fromkeys(subjects, 1)
    rows = await transfer_rows(tron_watcher_db)
    assert sorted(r.amount for r in rows) == [1_000_000, 2_000_000, 2_000_001, 2_000_002]
    assert {r.status for r in rows} == {"confirmed"}
