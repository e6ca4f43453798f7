"""A load-balanced provider answers from replicas at different heights (issue 13, items 1
and 2): a replica behind the cursor, or one that lacks the newest blocks and returns no
logs for them while another replica serves their headers. No payment may be skipped.

The replica is the real anvil behind a transport that answers some calls from a lagging
view of it, as a replica that has not imported the newest blocks yet would.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from stablegate_common.chains.evm import EvmClient
from stablegate_common.chains.jsonrpc import Call, JsonRpcTransport, rpc_error
from stablegate_common.core.assets import Network
from stablegate_common.db import Database
from stablegate_common.watcher.models import ScanCursor, WatchedAddress
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.watcher import (
    EngineFactory,
    announce,
    queued_events,
    scan_to_head,
    transfer_rows,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


class LaggingReplicas(JsonRpcTransport):
    """anvil, except that some answers come from a replica that has blocks up to
    `behind_at` only: the head when `head_lags`, range log queries when `logs_lag` (logs of
    newer blocks are missing), block-hash log queries when `hash_queries_lag` (EIP-234: an
    error for a block it does not have). Everything else is the synced replica's answer."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.behind_at: int | None = None
        self.head_lags = False
        self.logs_lag = False
        self.hash_queries_lag = False
        self.hash_queries: list[str] = []

    async def call(self, method: str, params: Sequence[Any]) -> Any:
        if self.behind_at is None:
            return await super().call(method, params)
        if method == "eth_blockNumber" and self.head_lags:
            return hex(self.behind_at)
        if method == "eth_getLogs" and "blockHash" in params[0]:
            return await self._logs_by_hash(params[0], self.behind_at)
        result = await super().call(method, params)
        if method == "eth_getLogs" and self.logs_lag:
            return [log for log in result if int(log["blockNumber"], 16) <= self.behind_at]
        return result

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        if self.behind_at is None or not any(m in _LAGGING for m, _ in calls):
            return await super().batch(calls)
        return [await self.call(method, params) for method, params in calls]

    async def _logs_by_hash(self, query: dict[str, Any], behind_at: int) -> Any:
        self.hash_queries.append(query["blockHash"])
        block = await super().call("eth_getBlockByHash", [query["blockHash"], False])
        if self.hash_queries_lag and int(block["number"], 16) > behind_at:
            raise rpc_error({"code": -32000, "message": "unknown block"}, "eth_getLogs")
        return await super().call("eth_getLogs", [query])


_LAGGING = {"eth_blockNumber", "eth_getLogs"}


def _client(anvil: AnvilChain) -> tuple[EvmClient, LaggingReplicas]:
    client = EvmClient(anvil.rpc_url, timeout_seconds=5)
    replicas = LaggingReplicas(anvil.rpc_url)
    client._rpc = replicas  # the transport is the client's only way to the node
    return client, replicas


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"network": "ethereum", **labels}) or 0.0


async def _cursor(db: Database) -> int:
    async with db.sessions() as session:
        value = await session.scalar(select(ScanCursor.last_scanned_block))
    assert value is not None
    return int(value)


async def _backfilled(db: Database, address: str) -> bool:
    async with db.sessions() as session:
        row = await session.get(WatchedAddress, address)
    assert row is not None
    return row.backfilled_at is not None


async def test_backfill_waits_for_a_node_behind_the_cursor(
    isolated_anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    """Item 1: blocks head+1 … cursor cannot be searched on a node that lacks them, so the
    address must not be marked backfilled until they were."""
    anvil = isolated_anvil
    client, replicas = _client(anvil)
    engine = await make_engine(client=client)
    try:
        await engine.resume()
        await scan_to_head(engine)
        before_payment = await anvil.block_number()
        deposit = fresh_address()
        tx_hash = await anvil.transfer(anvil.usdt, deposit, 4_000_000)
        await anvil.mine(1)
        await scan_to_head(engine)  # scanned while nobody watched the address
        assert await _cursor(watcher_db) == before_payment + 2

        await announce(watcher_db, network, [deposit], at=datetime.now(UTC) - timedelta(hours=1))
        replicas.behind_at, replicas.head_lags = before_payment, True
        assert await engine.tick() is False  # the node is behind: nothing to scan
        assert not await _backfilled(watcher_db, deposit)

        replicas.behind_at = None
        await scan_to_head(engine)
    finally:
        await client.close()

    [row] = await transfer_rows(watcher_db)
    assert (row.tx_hash, row.to_address) == (tx_hash, deposit)
    assert await _backfilled(watcher_db, deposit)


async def test_logs_missing_from_a_lagging_replica_are_retried_not_skipped(
    isolated_anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    """Item 2: headers from a synced replica, logs from one that lacks the newest blocks
    (it answers [] for them, and an error when asked by block hash): the window is read
    again until the logs are there, and the cursor never passes the payment unseen."""
    anvil = isolated_anvil
    client, replicas = _client(anvil)
    engine = await make_engine(client=client)
    deposit = fresh_address()
    try:
        await engine.resume()
        await announce(watcher_db, network, [deposit])
        await scan_to_head(engine)  # the address is watched and backfilled
        synced_to = await anvil.block_number()
        rejected = _metric("stablegate_watcher_rejected_windows_total", reason="logs_missing")

        replicas.behind_at, replicas.logs_lag, replicas.hash_queries_lag = synced_to, True, True
        tx_hash = await anvil.transfer(anvil.usdt, deposit, 6_000_000)
        await anvil.mine(1)
        for _ in range(3):
            assert await engine.tick() is False  # dropped: read it again after a pause
        assert await _cursor(watcher_db) == synced_to
        assert await transfer_rows(watcher_db) == []
        assert (
            _metric("stablegate_watcher_rejected_windows_total", reason="logs_missing")
            == rejected + 3
        )

        replicas.behind_at = None  # the replica caught up
        await scan_to_head(engine)
    finally:
        await client.close()

    [row] = await transfer_rows(watcher_db)
    assert (row.tx_hash, row.to_address, row.amount) == (tx_hash, deposit, 6_000_000)
    [event] = await queued_events(watcher_db, "transfer.detected")
    assert event.data["tx_hash"] == tx_hash


async def test_logs_missing_from_a_range_query_are_read_by_block_hash(
    isolated_anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    """The range query came from a lagging replica, the block-hash query from one that has
    the block: its logs are taken from there, in the same tick. Blocks whose bloom says no
    registered token logged a Transfer cost no extra query."""
    anvil = isolated_anvil
    client, replicas = _client(anvil)
    engine = await make_engine(client=client)
    deposit = fresh_address()
    try:
        await engine.resume()
        await announce(watcher_db, network, [deposit])
        await scan_to_head(engine)
        synced_to = await anvil.block_number()

        replicas.behind_at, replicas.logs_lag = synced_to, True
        tx_hash = await anvil.transfer(anvil.usdc, deposit, 7_000)
        block = int((await anvil.receipt(tx_hash))["blockNumber"], 16)
        await anvil.mine(2)  # empty blocks: their blooms are empty
        await scan_to_head(engine)
        assert await _cursor(watcher_db) == block + 2
        assert replicas.hash_queries == [await anvil.block_hash(block)]
    finally:
        await client.close()

    [row] = await transfer_rows(watcher_db)
    assert (row.tx_hash, row.block_number, row.amount) == (tx_hash, block, 7_000)


async def test_backfill_retries_logs_missing_from_a_lagging_replica(
    isolated_anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    """The head is right but the backfill's log query lands on a replica that lacks the
    newest blocks: the address stays due until its blocks were really searched."""
    anvil = isolated_anvil
    client, replicas = _client(anvil)
    engine = await make_engine(client=client)
    try:
        await engine.resume()
        await scan_to_head(engine)
        before_payment = await anvil.block_number()
        deposit = fresh_address()
        tx_hash = await anvil.transfer(anvil.usdt, deposit, 5_500_000)
        await anvil.mine(1)
        await scan_to_head(engine)  # scanned while nobody watched the address

        await announce(watcher_db, network, [deposit], at=datetime.now(UTC) - timedelta(hours=1))
        replicas.behind_at, replicas.logs_lag, replicas.hash_queries_lag = (
            before_payment,
            True,
            True,
        )
        await engine.tick()
        assert not await _backfilled(watcher_db, deposit)
        assert await transfer_rows(watcher_db) == []

        replicas.behind_at = None
        await scan_to_head(engine)
    finally:
        await client.close()

    [row] = await transfer_rows(watcher_db)
    assert (row.tx_hash, row.to_address) == (tx_hash, deposit)
    assert await _backfilled(watcher_db, deposit)


async def test_a_bloom_false_positive_costs_one_query_and_no_retry(
    isolated_anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    """USDT emits an Approval and a look-alike emits a Transfer in one block: its bloom has
    the USDT address and the Transfer topic, yet no registered token logged a Transfer.
    The block-hash query says so, and the window is recorded, not read again."""
    anvil = isolated_anvil
    engine = await make_engine()
    await engine.resume()
    await scan_to_head(engine)
    false_positives = _metric("stablegate_watcher_log_checks_total", outcome="bloom_false_positive")
    rejected = _metric("stablegate_watcher_rejected_windows_total", reason="logs_missing")
    await anvil.set_automine(False)
    try:
        approve = anvil.call_request(
            anvil.accounts[1], anvil.usdt, "approve(address,uint256)", fresh_address(), 5
        )
        await anvil.rpc("eth_sendTransaction", approve)
        await anvil.rpc(
            "eth_sendTransaction",
            anvil.call_request(
                anvil.accounts[9],
                anvil.lookalike,
                "fakeTransfer(address,address,uint256)",
                anvil.accounts[1],
                fresh_address(),
                5,
            ),
        )
        await anvil.mine(1)
    finally:
        await anvil.set_automine(True)
    block = await anvil.block_number()
    raw = await anvil.rpc("eth_getBlockByNumber", hex(block), False)
    assert len(raw["transactions"]) == 2

    await scan_to_head(engine)
    assert await _cursor(watcher_db) == block
    assert (
        _metric("stablegate_watcher_log_checks_total", outcome="bloom_false_positive")
        == false_positives + 1
    )
    assert _metric("stablegate_watcher_rejected_windows_total", reason="logs_missing") == rejected
