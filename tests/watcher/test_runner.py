"""The scanning loop: start-up checks, readiness while the node is away and back, the
adaptive window under a provider's range limit, and one scanner among replicas."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Container, Sequence
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from stablegate_common.chains import RangeTooLarge, TransferLogs
from stablegate_common.chains.evm import EvmClient
from stablegate_common.core.assets import Network
from stablegate_common.db import Database
from stablegate_common.watcher import (
    ChainIdMismatch,
    ScannerLoop,
    TokenDecimalsMismatch,
    WatcherEngine,
    WatcherNotReady,
)
from stablegate_common.watcher.models import ScanCursor
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.watcher import (
    EngineFactory,
    NodeProxy,
    announce,
    eventually,
    queued_events,
    transfer_rows,
    with_decimals,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@contextlib.asynccontextmanager
async def running(loop: ScannerLoop) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def _ready(loop: ScannerLoop) -> bool:
    try:
        await loop.check_ready()
    except Exception:
        return False
    return True


async def _detected(db: Database) -> list[str]:
    return [e.data["tx_hash"] for e in await queued_events(db, "transfer.detected")]


# --- start-up checks ----------------------------------------------------------------------


async def test_token_decimals_mismatch_refuses_to_start(
    make_engine: EngineFactory, network: Network
) -> None:
    engine = await make_engine(network=with_decimals(network, "USDC", 18))
    with pytest.raises(TokenDecimalsMismatch, match=r"USDC .*returns 6.*registry says 18"):
        await engine.verify_chain()
    loop = ScannerLoop(engine)
    with pytest.raises(TokenDecimalsMismatch):
        await asyncio.wait_for(loop.run(asyncio.Event()), 10)
    assert not loop.is_leader
    with pytest.raises(WatcherNotReady, match="start-up"):
        await loop.check_ready()


async def test_node_of_another_chain_refuses_to_start(
    make_engine: EngineFactory, network: Network
) -> None:
    engine = await make_engine(network=replace(network, chain_id=1))
    with pytest.raises(ChainIdMismatch, match=r"chain id 31337.*says 1"):
        await engine.verify_chain()


async def test_matching_registry_passes_the_start_up_checks(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    await engine.verify_chain()


# --- node outage --------------------------------------------------------------------------


async def test_node_down_makes_the_watcher_unready_then_it_catches_up(
    anvil: AnvilChain,
    make_engine: EngineFactory,
    watcher_db: Database,
    network: Network,
    node_proxy: NodeProxy,
) -> None:
    client = EvmClient(node_proxy.url, timeout_seconds=1)
    engine = await make_engine(client=client)
    loop = ScannerLoop(engine)
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    errors_before = (
        REGISTRY.get_sample_value(
            "stablegate_watcher_node_errors_total",
            {"network": "ethereum", "kind": "chain_unavailable"},
        )
        or 0.0
    )
    try:
        async with running(loop):
            await eventually(lambda: _ready(loop))
            assert loop.is_leader

            node_proxy.down()
            await eventually(lambda: loop.node_failing)
            with pytest.raises(WatcherNotReady, match="node failing"):
                await loop.check_ready()
            # Paid while the watcher cannot see the chain.
            tx_hash = await anvil.transfer(anvil.usdt, deposit, 4_200_000)
            await anvil.mine(4)
            await asyncio.sleep(0.3)
            assert await transfer_rows(watcher_db) == []

            node_proxy.up()
            await eventually(lambda: _ready(loop))
            await eventually(lambda: _detected_is(watcher_db, [tx_hash]))
            await eventually(lambda: _confirmed(watcher_db, tx_hash))
    finally:
        await client.close()
    assert (
        REGISTRY.get_sample_value(
            "stablegate_watcher_node_errors_total",
            {"network": "ethereum", "kind": "chain_unavailable"},
        )
        or 0.0
    ) > errors_before


async def _detected_is(db: Database, expected: list[str]) -> bool:
    return await _detected(db) == expected


async def _confirmed(db: Database, tx_hash: str) -> bool:
    return any(e.data["tx_hash"] == tx_hash for e in await queued_events(db, "transfer.confirmed"))


async def test_unreachable_node_at_start_is_retried_until_it_answers(
    make_engine: EngineFactory, node_proxy: NodeProxy
) -> None:
    client = EvmClient(node_proxy.url, timeout_seconds=1)
    engine = await make_engine(client=client)
    loop = ScannerLoop(engine)
    node_proxy.down()
    try:
        async with running(loop):
            await eventually(lambda: loop.consecutive_errors >= 2)
            assert not loop.verified
            with pytest.raises(WatcherNotReady, match="start-up checks pending"):
                await loop.check_ready()
            node_proxy.up()
            await eventually(lambda: _ready(loop))
    finally:
        await client.close()


async def test_stalled_scanning_is_not_ready(make_engine: EngineFactory) -> None:
    engine = await make_engine(stale_seconds=0.2, poll_interval_seconds=5)
    loop = ScannerLoop(engine)
    async with running(loop):
        await eventually(lambda: _ready(loop))
        await asyncio.sleep(0.4)  # the next tick is 5 s away: the last scan is stale
        with pytest.raises(WatcherNotReady, match="no scan succeeded for"):
            await loop.check_ready()


# --- provider range limit -----------------------------------------------------------------


class RangeLimited(EvmClient):
    """The real client behind a provider limit of `max_blocks` per log query (a QuickNode
    free tier allows 5): wider queries are refused as such providers refuse them."""

    def __init__(self, rpc_url: str, max_blocks: int, *, state_limit: bool) -> None:
        super().__init__(rpc_url)
        self.max_blocks = max_blocks
        self.state_limit = state_limit
        self.refused = 0

    def _check(self, from_block: int, to_block: int) -> None:
        if to_block - from_block + 1 > self.max_blocks:
            self.refused += 1
            raise RangeTooLarge(
                f"eth_getLogs is limited to a {self.max_blocks} range",
                rpc_code=-32602,
                max_block_range=self.max_blocks if self.state_limit else None,
            )

    async def transfer_logs(
        self,
        from_block: int,
        to_block: int,
        contracts: Sequence[str],
        recipients: Container[str] | None,
    ) -> TransferLogs:
        # Every log query of the client (transfers, transfers_to) goes through here.
        self._check(from_block, to_block)
        return await super().transfer_logs(from_block, to_block, contracts, recipients)


@pytest.mark.parametrize("state_limit", [False, True], ids=["unstated", "stated"])
async def test_window_halves_under_a_range_limit_and_finds_the_transfer(
    anvil: AnvilChain,
    make_engine: EngineFactory,
    watcher_db: Database,
    network: Network,
    state_limit: bool,
) -> None:
    client = RangeLimited(anvil.rpc_url, 5, state_limit=state_limit)
    engine = await make_engine(client=client, window_blocks=64, max_window_blocks=64)
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    await anvil.mine(20)
    tx_hash = await anvil.transfer(anvil.usdt, deposit, 1_234)
    await anvil.mine(20)
    loop = ScannerLoop(engine)
    try:
        async with running(loop):
            await eventually(lambda: _confirmed(watcher_db, tx_hash))
            head = await anvil.block_number()
            await eventually(lambda: _scanned_to(engine, head))
            assert await _ready(loop)  # refused windows are not an unreachable node
    finally:
        await client.close()
    assert await _detected(watcher_db) == [tx_hash]
    if state_limit:
        # Told the limit, the window obeys it for good: one refusal only.
        assert (client.refused, engine.window.maximum) == (1, 5)
    else:
        assert client.refused >= 4  # 64 → 32 → 16 → 8 → 4 blocks


async def _scanned_to(engine: WatcherEngine, block: int) -> bool:
    async with engine.db.sessions() as session:
        cursor = await session.scalar(select(ScanCursor.last_scanned_block))
    return cursor is not None and cursor >= block


# --- replicas -----------------------------------------------------------------------------


async def test_one_replica_scans_and_a_standby_takes_over(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    loops = [ScannerLoop(await make_engine()), ScannerLoop(await make_engine())]
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    stops = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(loop.run(stop)) for loop, stop in zip(loops, stops, strict=True)]
    try:
        await eventually(lambda: sum(loop.is_leader for loop in loops) == 1)
        leader = next(i for i, loop in enumerate(loops) if loop.is_leader)
        standby = 1 - leader
        first = await anvil.transfer(anvil.usdt, deposit, 1)
        await eventually(lambda: _detected_is(watcher_db, [first]))
        assert await _ready(loops[standby])  # a standby is ready to take over
        assert sum(loop.is_leader for loop in loops) == 1

        stops[leader].set()
        await asyncio.wait_for(tasks[leader], 10)
        await eventually(lambda: loops[standby].is_leader)
        second = await anvil.transfer(anvil.usdt, deposit, 2)
        await eventually(lambda: _detected_is(watcher_db, [first, second]))
    finally:
        for stop in stops:
            stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
    rows = await transfer_rows(watcher_db)
    assert [(r.tx_hash, r.sequence >= 1) for r in rows] == [(first, True), (second, True)]
