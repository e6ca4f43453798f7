"""The watcher's state belongs to one chain (issue 13, item 8): the cursor keeps the chain
id and genesis hash, a node of another chain (a devnet started again from block 0) is
refused with a message that says what to do, `reset-chain` starts afresh, and a cursor
from before identities were kept adopts the node's chain."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select, text

from devnet.devnet import AnvilProcess, deploy_tokens, free_port, start_anvil
from stablegate_common.chains.evm import EvmClient
from stablegate_common.config import BusSettings
from stablegate_common.core.assets import Network
from stablegate_common.db import Database
from stablegate_common.watcher import ChainChanged, ScannerLoop
from stablegate_common.watcher import service as watcher_service
from stablegate_common.watcher.models import ScanCursor, WatchedAddress
from stablegate_watcher_eth.app import SPEC as ETH_SPEC
from tests.conftest import DATABASE_URL
from tests.fixtures.anvil import SPEC, AnvilChain, fresh_address
from tests.fixtures.watcher import EngineFactory, announce, scan_to_head, transfer_rows

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def restarted_anvil(anvil: AnvilChain, tmp_path: Path) -> AsyncIterator[AnvilProcess]:
    """The devnet started again: same chain id, the same token contracts at the same
    addresses, a new genesis (an earlier timestamp, so it differs even within a second)."""
    process = await asyncio.to_thread(
        start_anvil,
        free_port(),
        SPEC.chain_id,
        log_path=tmp_path / "anvil.log",
        extra_args=["--timestamp", str(int(time.time()) - 3600)],
    )
    try:
        tokens = await asyncio.to_thread(
            deploy_tokens, process.rpc_url, decimals=SPEC.decimals, deploy_nonce=SPEC.deploy_nonce
        )
        assert tokens.usdt == anvil.tokens.usdt
        yield process
    finally:
        process.stop()


async def _cursor(db: Database) -> ScanCursor | None:
    async with db.sessions() as session:
        return await session.scalar(select(ScanCursor))


def _reset_chain(schema: str, *args: str) -> int:
    """`stablegate-watcher-eth reset-chain …` in this process, on the test's schema."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DATABASE_URL", DATABASE_URL)
    mp.setenv("DATABASE_SCHEMA", schema)
    for name in ("STABLEGATE_ENVIRONMENT", "STABLEGATE_ASSETS_FILE"):
        mp.delenv(name, raising=False)
    for name, value in (pair.split("=", 1) for pair in args if "=" in pair):
        mp.setenv(name, value)
    try:
        return watcher_service.main(ETH_SPEC, ["reset-chain", *(a for a in args if "=" not in a)])
    finally:
        mp.undo()


async def test_a_new_cursor_keeps_the_chain_identity(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database
) -> None:
    engine = await make_engine()
    await engine.verify_chain()
    await engine.resume()
    cursor = await _cursor(watcher_db)
    assert cursor is not None
    assert cursor.chain_id == 31337
    assert cursor.genesis_hash == await anvil.block_hash(0)


async def test_a_restarted_devnet_is_refused_with_what_to_do(
    anvil: AnvilChain,
    restarted_anvil: AnvilProcess,
    make_engine: EngineFactory,
    watcher_db: Database,
) -> None:
    first = await make_engine()
    await scan_to_head(first)
    await anvil.mine(3)
    await scan_to_head(first)
    client = EvmClient(restarted_anvil.rpc_url, timeout_seconds=5)
    try:
        engine = await make_engine(client=client)
        message = (
            r"ethereum: the node serves another chain \(chain id 31337, genesis 0x[0-9a-f]{64}\)"
            r".*reset-chain --yes.*WATCHER_RPC_URL"
        )
        with pytest.raises(ChainChanged, match=message) as refused:
            await engine.verify_chain()
        assert "`stablegate-watcher-eth reset-chain --yes`" in str(refused.value)
        # The scanning loop stops on it, as on a chain id mismatch: the service exits.
        loop = ScannerLoop(engine)
        with pytest.raises(ChainChanged):
            await asyncio.wait_for(loop.run(asyncio.Event()), 10)
        assert not loop.is_leader
        # A scanner that takes the lock later checks again before it scans.
        with pytest.raises(ChainChanged):
            await engine.resume()
    finally:
        await client.close()
    cursor = await _cursor(watcher_db)
    assert cursor is not None
    assert cursor.genesis_hash == await anvil.block_hash(0)


async def test_reset_chain_starts_afresh_on_the_new_chain(
    anvil: AnvilChain,
    restarted_anvil: AnvilProcess,
    make_engine: EngineFactory,
    watcher_db: Database,
    network: Network,
    schema_name: str,
) -> None:
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    first = await make_engine()
    await scan_to_head(first)
    await anvil.transfer(anvil.tokens.usdt, deposit, 5_000_000)
    await anvil.mine(1)
    await scan_to_head(first)
    assert len(await transfer_rows(watcher_db)) == 1

    # Refused without --yes, and in production without --force: nothing deleted.
    assert await asyncio.to_thread(_reset_chain, schema_name) == 2
    production = "STABLEGATE_ENVIRONMENT=production"
    assert await asyncio.to_thread(_reset_chain, schema_name, "--yes", production) == 2
    assert len(await transfer_rows(watcher_db)) == 1
    assert await _cursor(watcher_db) is not None

    assert await asyncio.to_thread(_reset_chain, schema_name, "--yes") == 0
    assert await transfer_rows(watcher_db) == []
    assert await _cursor(watcher_db) is None
    async with watcher_db.sessions() as session:
        kept = (await session.execute(select(WatchedAddress))).scalars().all()
        hashes = await session.scalar(text("SELECT count(*) FROM block_hashes"))
    assert [(a.address, a.backfilled_at) for a in kept] == [(deposit, None)]
    assert hashes == 0

    client = EvmClient(restarted_anvil.rpc_url, timeout_seconds=5)
    try:
        engine = await make_engine(client=client, start_block=None, start_blocks_back=0)
        await engine.verify_chain()
        await engine.resume()
        cursor = await _cursor(watcher_db)
        assert cursor is not None
        genesis = (await client.headers([0]))[0].hash
        assert cursor.genesis_hash == genesis != await anvil.block_hash(0)
        await scan_to_head(engine)
    finally:
        await client.close()


async def test_a_cursor_from_before_identities_adopts_the_nodes_chain(
    anvil: AnvilChain,
    make_engine: EngineFactory,
    watcher_db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = await make_engine()
    await scan_to_head(engine)
    async with watcher_db.transaction() as session:
        await session.execute(text("UPDATE scan_cursor SET chain_id = NULL, genesis_hash = NULL"))
    with caplog.at_level(logging.WARNING, logger="stablegate_common.watcher.identity"):
        await engine.verify_chain()
    cursor = await _cursor(watcher_db)
    assert cursor is not None
    assert (cursor.chain_id, cursor.genesis_hash) == (31337, await anvil.block_hash(0))
    assert any("adopted the node's chain identity" in r.getMessage() for r in caplog.records)
    await engine.verify_chain()  # the adopted identity is the node's: it starts


async def test_serve_on_another_chain_exits_non_zero_with_the_message(
    anvil: AnvilChain, watcher_db: Database, schema_name: str, bus_settings: BusSettings
) -> None:
    """The real service: the refusal ends `serve` with exit 1 and says what to do."""
    async with watcher_db.transaction() as session:
        session.add(
            ScanCursor(
                network="ethereum",
                last_scanned_block=118,
                chain_id=31337,
                genesis_hash="0x" + "ab" * 32,
            )
        )
    env = {
        **os.environ,
        "STABLEGATE_ENVIRONMENT": "test",
        "STABLEGATE_ASSETS_FILE": str(anvil.assets_file),
        "DATABASE_URL": DATABASE_URL,
        "DATABASE_SCHEMA": schema_name,
        "RABBITMQ_URL": bus_settings.url.get_secret_value(),
        "RABBITMQ_EXCHANGE": bus_settings.exchange,
        "HTTP_PORT": str(free_port()),
        "WATCHER_RPC_URL": anvil.rpc_url,
    }
    command = [sys.executable, "-m", "stablegate_watcher_eth.cli", "serve"]
    result = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "the node serves another chain" in output
    assert "scanned up to block 118" in output
    assert "stablegate-watcher-eth reset-chain --yes" in output
