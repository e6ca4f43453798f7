"""The Tron watcher keeps its devnet's identity too (no chain id on Tron: the genesis
block's id): a devnet started again is refused, `reset-chain` lets it start afresh."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from devnet.devnet import free_port
from devnet.tron import DevnetConfig, TronDevnet, start_tron_devnet
from stablegate_common.chains.tron import TronClient
from stablegate_common.db import Database
from stablegate_common.watcher import ChainChanged
from stablegate_common.watcher.identity import reset_chain_state
from stablegate_common.watcher.models import ScanCursor
from tests.fixtures.tron import TRON_DEPTH
from tests.fixtures.tron_watcher import TronEngineFactory
from tests.fixtures.watcher import scan_to_head

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def restarted_tron() -> Iterator[TronDevnet]:
    """The Tron devnet started again: the same tokens and accounts, a new block 0."""
    devnet = start_tron_devnet(
        free_port(), DevnetConfig(block_time=0, solidification_depth=TRON_DEPTH)
    )
    try:
        yield devnet
    finally:
        devnet.stop()


async def _cursor(db: Database) -> ScanCursor | None:
    async with db.sessions() as session:
        return await session.scalar(select(ScanCursor))


async def test_a_restarted_tron_devnet_is_refused_until_reset(
    tron_chain: TronDevnet,
    restarted_tron: TronDevnet,
    make_tron_engine: TronEngineFactory,
    tron_watcher_db: Database,
) -> None:
    tron_chain.mine(3)
    first = make_tron_engine()
    await first.verify_chain()
    await scan_to_head(first)
    cursor = await _cursor(tron_watcher_db)
    assert cursor is not None
    genesis = (await first.client.headers([0]))[0].hash
    assert (cursor.chain_id, cursor.genesis_hash) == (None, genesis)

    client = TronClient(restarted_tron.url, timeout_seconds=2)
    try:
        engine = make_tron_engine(client=client, start_block=None, start_blocks_back=0)
        message = (
            r"tron: the node serves another chain \(genesis [0-9a-f]{64}\) than the one "
            rf"this watcher's state was built on \(genesis {genesis}, .*"
            r"`stablegate-watcher-tron reset-chain --yes`"
        )
        with pytest.raises(ChainChanged, match=message):
            await engine.verify_chain()

        async with tron_watcher_db.transaction() as session:
            summary = await reset_chain_state(session)
        assert summary.cursors == 1
        await engine.verify_chain()
        await engine.resume()
        restarted_tron.mine(2)
        await asyncio.wait_for(scan_to_head(engine), 30)
        cursor = await _cursor(tron_watcher_db)
        assert cursor is not None
        assert cursor.genesis_hash == (await client.headers([0]))[0].hash != genesis
        assert cursor.last_scanned_block >= 0
    finally:
        await client.close()
