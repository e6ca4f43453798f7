"""Reorgs driven by anvil (`anvil_reorg`, `anvil_rollback`): transfers of dropped blocks are
reverted, re-included ones come back with a new sequence, and a chain that changed while a
window was read is never recorded."""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from stablegate_common.chains import TransferLogs
from stablegate_common.chains.evm import EvmClient
from stablegate_common.core.assets import Network
from stablegate_common.db import Database
from stablegate_common.watcher.models import BlockHash, ScanCursor
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.watcher import (
    CONFIRMATIONS,
    EngineFactory,
    announce,
    queued_events,
    scan_to_head,
    transfer_rows,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

TRANSFER_TYPES = ("transfer.detected", "transfer.confirmed", "transfer.reverted")


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"network": "ethereum", **labels}) or 0.0


async def _history(db: Database) -> list[tuple[str, str, int]]:
    return [(e.type, e.subject, e.sequence) for e in await queued_events(db, *TRANSFER_TYPES)]


async def _cursor(db: Database) -> int:
    async with db.sessions() as session:
        value = await session.scalar(select(ScanCursor.last_scanned_block))
    assert value is not None
    return int(value)


async def test_reorg_reverts_a_pending_transfer_and_re_inclusion_detects_it_again(
    isolated_anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    anvil = isolated_anvil
    engine = await make_engine()
    await engine.resume()
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    tx_hash = await anvil.transfer(anvil.usdt, deposit, 3_000_000)
    raw = await anvil.rpc("eth_getRawTransactionByHash", tx_hash)
    await anvil.mine(1)
    await scan_to_head(engine)
    subject = f"ethereum:{tx_hash}:0"
    assert await _history(watcher_db) == [("transfer.detected", subject, 1)]
    reorgs_before = _metric("stablegate_watcher_reorgs_total")
    cursor_before = await _cursor(watcher_db)

    # Replace the transfer's block and the one above it with two empty blocks.
    await anvil.reorg(2, [])
    assert await anvil.rpc("eth_getTransactionReceipt", tx_hash) is None
    await scan_to_head(engine)

    assert await _history(watcher_db) == [
        ("transfer.detected", subject, 1),
        ("transfer.reverted", subject, 2),
    ]
    [reverted] = await queued_events(watcher_db, "transfer.reverted")
    assert reverted.data["confirmations"] == 0
    [row] = await transfer_rows(watcher_db)
    assert (row.status, row.sequence) == ("reverted", 2)
    assert _metric("stablegate_watcher_reorgs_total") == reorgs_before + 1
    # The replacement blocks were scanned and their hashes kept.
    assert await _cursor(watcher_db) == cursor_before
    async with watcher_db.sessions() as session:
        kept = await session.scalar(select(BlockHash.hash).where(BlockHash.number == cursor_before))
    assert kept == await anvil.block_hash(cursor_before)

    # The same signed transaction is mined again, in a new block.
    assert await anvil.rpc("eth_sendRawTransaction", raw) == tx_hash
    new_block = int((await anvil.receipt(tx_hash))["blockNumber"], 16)
    await scan_to_head(engine)
    history = await _history(watcher_db)
    assert history[-1] == ("transfer.detected", subject, 3)
    [detected_again] = [e for e in await queued_events(watcher_db, "transfer.detected")][1:]
    assert detected_again.data["block_number"] == new_block
    assert detected_again.data["block_hash"] == await anvil.block_hash(new_block)

    await anvil.mine(CONFIRMATIONS)
    await scan_to_head(engine)
    assert (await _history(watcher_db))[-1] == ("transfer.confirmed", subject, 4)
    [row] = await transfer_rows(watcher_db)
    assert (row.status, row.block_number) == ("confirmed", new_block)


async def test_reorg_that_keeps_the_transfer_block_reverts_nothing(
    isolated_anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    anvil = isolated_anvil
    engine = await make_engine()
    await engine.resume()
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    await anvil.transfer(anvil.usdt, deposit, 1_000_000)
    await anvil.mine(3)
    await scan_to_head(engine)
    reorgs_before = _metric("stablegate_watcher_reorgs_total")

    # Only the blocks above the transfer change. An unrelated transaction makes sure they
    # do: empty replacements mined within the same second can hash exactly as before.
    nudge = {"from": anvil.accounts[5], "to": anvil.accounts[6], "value": hex(1)}
    await anvil.reorg(2, [(nudge, 0)])
    await scan_to_head(engine)

    assert _metric("stablegate_watcher_reorgs_total") == reorgs_before + 1
    assert [t for t, _, _ in await _history(watcher_db)] == [
        "transfer.detected",
        "transfer.confirmed",
    ]


async def test_a_confirmed_transfer_is_reverted_by_a_reorg_deeper_than_the_kept_hashes(
    isolated_anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    anvil = isolated_anvil
    await anvil.mine(5)  # the reorg below must stay above the fixture's snapshot
    # No extra rescan depth: the cursor goes exactly below the replaced transfer's block.
    engine = await make_engine(
        reorg_window=CONFIRMATIONS,
        window_blocks=2,
        max_window_blocks=2,
        deep_reorg_rescan_blocks=0,
    )
    await engine.resume()
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    tx_hash = await anvil.transfer(anvil.usdt, deposit, 2_000_000)
    block = int((await anvil.receipt(tx_hash))["blockNumber"], 16)
    await anvil.mine(8)
    await scan_to_head(engine)
    subject = f"ethereum:{tx_hash}:0"
    assert [t for t, _, _ in await _history(watcher_db)] == [
        "transfer.detected",
        "transfer.confirmed",
    ]
    deep_before = _metric("stablegate_watcher_deep_reorgs_total")

    await anvil.reorg(10, [])  # drops the transfer's block, far below the 3 kept hashes
    await engine.tick()
    assert _metric("stablegate_watcher_deep_reorgs_total") == deep_before + 1
    assert (await _history(watcher_db))[-1] == ("transfer.reverted", subject, 3)
    assert await _cursor(watcher_db) == block - 1
    await scan_to_head(engine)
    [row] = await transfer_rows(watcher_db)
    assert row.status == "reverted"


async def test_a_shorter_chain_is_waited_for_then_a_changed_block_is_reverted(
    isolated_anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    """A node below the cursor whose head block is ours is behind, not reorged (a lagging
    provider replica); once the chain grows past the cursor on other blocks, it is a reorg."""
    anvil = isolated_anvil
    engine = await make_engine()
    await engine.resume()
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    tx_hash = await anvil.transfer(anvil.usdt, deposit, 1_000_000)
    await anvil.mine(1)
    await scan_to_head(engine)
    cursor = await _cursor(watcher_db)

    await anvil.rpc("anvil_rollback", 2)  # head is now the block before the transfer
    assert await anvil.block_number() == cursor - 2
    await scan_to_head(engine)
    assert await _cursor(watcher_db) == cursor
    [row] = await transfer_rows(watcher_db)
    assert row.status == "pending"

    await anvil.mine(4)  # new blocks at the same heights: the transfer's block is gone
    await scan_to_head(engine)
    assert [t for t, _, _ in await _history(watcher_db)] == [
        "transfer.detected",
        "transfer.reverted",
    ]
    assert (await transfer_rows(watcher_db))[0].tx_hash == tx_hash


class ReorgWhileReading(EvmClient):
    """The real client, except that once armed, its next log query is preceded by a real
    reorg on anvil: the headers already read then describe a chain that no longer exists."""

    def __init__(self, anvil: AnvilChain, replacement: dict[str, Any]) -> None:
        super().__init__(anvil.rpc_url)
        self.anvil = anvil
        self.replacement = replacement
        self.armed = False
        self.fired = False

    async def _reorg_once(self) -> None:
        if self.armed and not self.fired:
            self.fired = True
            await self.anvil.reorg(1, [(self.replacement, 0)])

    async def transfer_logs(
        self,
        from_block: int,
        to_block: int,
        contracts: Sequence[str],
        recipients: Container[str] | None,
    ) -> TransferLogs:
        # Every log query of the client (transfers, transfers_to) goes through here.
        await self._reorg_once()
        return await super().transfer_logs(from_block, to_block, contracts, recipients)


async def test_a_window_read_across_a_reorg_is_dropped_and_read_again(
    isolated_anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    anvil = isolated_anvil
    deposit = fresh_address()
    replacement = anvil.call_request(
        anvil.accounts[2], anvil.usdc, "transfer(address,uint256)", deposit, 777
    )
    client = ReorgWhileReading(anvil, replacement)
    engine = await make_engine(client=client)
    await engine.resume()
    await announce(watcher_db, network, [deposit])
    await scan_to_head(engine)  # the address is watched and backfilled
    dropped = await anvil.transfer(anvil.usdt, deposit, 555)
    client.armed = True
    rejected_before = _metric(
        "stablegate_watcher_rejected_windows_total", reason="log_block_changed"
    )
    try:
        assert await engine.tick() is False  # the window was dropped: read it next tick
        assert client.fired
        assert await transfer_rows(watcher_db) == []
        assert (
            _metric("stablegate_watcher_rejected_windows_total", reason="log_block_changed")
            == rejected_before + 1
        )
        await scan_to_head(engine)
    finally:
        await client.close()

    [row] = await transfer_rows(watcher_db)
    assert (row.token_contract, row.amount) == (anvil.usdc.lower(), 777)
    assert row.tx_hash != dropped
    assert row.block_hash == await anvil.block_hash(row.block_number)


async def test_a_reorg_deeper_than_the_kept_hashes_rescans_the_blocks_below_them(
    isolated_anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    """The new fork pays a watched address in a block below the oldest kept hash, where
    no recorded transfer marks the change: the rescan must reach it (issue 13, item 3)."""
    anvil = isolated_anvil
    await anvil.mine(5)  # the reorg below must stay above the fixture's snapshot
    engine = await make_engine(
        reorg_window=CONFIRMATIONS,
        window_blocks=2,
        max_window_blocks=2,
        deep_reorg_rescan_blocks=16,
    )
    await engine.resume()
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    await anvil.mine(10)
    await scan_to_head(engine)
    head = await anvil.block_number()
    deep_before = _metric("stablegate_watcher_deep_reorgs_total")

    payment = anvil.call_request(
        anvil.accounts[1], anvil.usdt, "transfer(address,uint256)", deposit, 8_100_000
    )
    await anvil.reorg(10, [(payment, 0)])  # into block head-9, far below the 3 kept hashes
    await scan_to_head(engine)

    assert _metric("stablegate_watcher_deep_reorgs_total") == deep_before + 1
    [row] = await transfer_rows(watcher_db)
    assert (row.to_address, row.amount, row.block_number) == (deposit, 8_100_000, head - 9)
    assert row.block_hash == await anvil.block_hash(head - 9)
    assert await _cursor(watcher_db) == head
