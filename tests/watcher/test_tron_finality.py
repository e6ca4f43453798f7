"""Tron finality is the solidified chain, not the solidified height: a transfer that the
full node we scan has in a block of a fork is never confirmed once the solidity node's
height passes it; it is rolled back like a reorg, its window is read again only once
the full node serves the solidified chain, and then it is confirmed in its real block.

Two devnets stand for the two views a load-balanced provider can give: the full node
(the test's own devnet, which keeps a fork) and the solidity node (a second devnet that
starts as a copy of the first, then forks away from it and solidifies its own blocks).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from devnet.devnet import free_port
from devnet.tron import DevnetConfig, TronDevnet, start_tron_devnet
from devnet.tron.chain import Chain
from stablegate_common.chains.tron import TronClient
from stablegate_common.core.assets import Network
from stablegate_common.db import Database
from tests.fixtures.tron import TRON_DEPTH, fresh_tron_account
from tests.fixtures.tron_payments import block_of, funded_payer, pay_trc20
from tests.fixtures.tron_watcher import TronEngineFactory
from tests.fixtures.watcher import announce, queued_events, scan_to_head, transfer_rows

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def solidity_node() -> Iterator[TronDevnet]:
    devnet = start_tron_devnet(
        free_port(), DevnetConfig(block_time=0, solidification_depth=TRON_DEPTH)
    )
    try:
        yield devnet
    finally:
        devnet.stop()


def copy_chain(source: TronDevnet, target: TronDevnet) -> None:
    """Make `target` serve a copy of `source`'s chain (blocks, pool, state)."""
    chain: Chain = source.call(lambda node: copy.deepcopy(node.chain))
    target.call(lambda node: setattr(node, "chain", chain))


async def test_a_transfer_on_a_fork_of_the_full_node_is_not_confirmed_by_height(
    tron_chain: TronDevnet,
    solidity_node: TronDevnet,
    make_tron_engine: TronEngineFactory,
    tron_watcher_db: Database,
    tron_network: Network,
) -> None:
    client = TronClient(tron_chain.url, solidity_url=solidity_node.url, timeout_seconds=2)
    engine = make_tron_engine(client=client)
    try:
        await engine.resume()
        deposit = fresh_tron_account().address
        await announce(tron_watcher_db, tron_network, [deposit])
        copy_chain(tron_chain, solidity_node)
        await scan_to_head(engine)

        payer = funded_payer(tron_chain, usdt=30_000_000)
        txid = await pay_trc20(tron_chain, payer, deposit, 25_000_000)
        [block] = tron_chain.mine()
        copy_chain(tron_chain, solidity_node)
        await scan_to_head(engine)
        [detected] = await queued_events(tron_watcher_db, "transfer.detected")
        assert detected.data["block_hash"] == tron_chain.block_id(block)

        # The solidity node's chain replaces that block (same transaction, another block
        # id) and solidifies it; the full node keeps its fork and keeps growing.
        solidity_node.fork(1)
        solidity_node.mine(TRON_DEPTH + 1)
        tron_chain.mine(TRON_DEPTH + 1)
        assert solidity_node.solid() >= block
        assert solidity_node.block_id(block) != tron_chain.block_id(block)
        await scan_to_head(engine)
        await scan_to_head(engine)

        assert await queued_events(tron_watcher_db, "transfer.confirmed") == []
        [reverted] = await queued_events(tron_watcher_db, "transfer.reverted")
        assert reverted.subject == detected.subject
        [row] = await transfer_rows(tron_watcher_db)
        assert row.status == "reverted"

        # The full node comes back to the solidified chain: the transfer is found again in
        # the solidified block and confirmed there.
        copy_chain(solidity_node, tron_chain)
        await scan_to_head(engine)
        [confirmed] = await queued_events(tron_watcher_db, "transfer.confirmed")
        assert confirmed.subject == detected.subject
        assert confirmed.data["block_hash"] == solidity_node.block_id(block)
        assert block_of(tron_chain, txid) == block
        [row] = await transfer_rows(tron_watcher_db)
        assert (row.status, row.block_hash) == ("confirmed", solidity_node.block_id(block))
    finally:
        await client.close()


async def test_finalized_hashes_are_the_solidity_nodes_and_stop_at_its_solid_block(
    tron_chain: TronDevnet,
) -> None:
    tron_chain.mine(3)
    solid = tron_chain.solid()
    async with TronClient(tron_chain.url, timeout_seconds=2) as client:
        wanted = [1, solid - 1, solid, solid + 1, solid + 2]
        found = await client.finalized_hashes(wanted)
    assert found == {n: tron_chain.block_id(n) for n in (1, solid - 1, solid)}
