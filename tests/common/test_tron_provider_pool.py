"""The Tron provider pool against hostile java-tron HTTP APIs in front of the devnet:
quorum heads (full and solidified), routing away from a lagging node, failover on 429s,
errors and dropped connections."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from devnet.tron import TronDevnet
from stablegate_common.chains import ChainUnavailable
from stablegate_common.chains.endpoints import RpcEndpoint
from stablegate_common.chains.pool import PoolPolicy
from stablegate_common.chains.provider_pools import TronProviderPool, tron_pool
from tests.conftest import unique
from tests.fixtures.hostile_tron import HostileTronNode, hostile_tron_nodes

pytestmark = pytest.mark.asyncio(loop_scope="session")


def pool_over(
    nodes: Sequence[HostileTronNode], weights: Sequence[float], quorum: int
) -> TronProviderPool:
    endpoints = [
        RpcEndpoint(url=n.url, name=n.name, weight=w) for n, w in zip(nodes, weights, strict=True)
    ]
    policy = PoolPolicy(quorum=quorum, backoff_seconds=0.2, max_backoff_seconds=1.0)
    return tron_pool(unique("tron"), endpoints, [], policy, timeout_seconds=3)


async def test_heads_are_quorums_and_a_lagging_node_is_not_asked_above_its_head(
    paused_tron: TronDevnet,
) -> None:
    paused_tron.mine(3)
    head, solid = paused_tron.head(), paused_tron.solid()
    async with hostile_tron_nodes([paused_tron.url] * 3) as nodes:
        lagging, _, slow = nodes
        lagging.lag, slow.lag = 2, 1
        pool = pool_over(nodes, weights=(100, 1, 1), quorum=2)

        assert await pool.head() == head - 1
        assert await pool.finalized_head() == solid
        headers = await pool.headers([head - 1])
        assert headers[0].number == head - 1
        assert lagging.calls["wallet/getblockbynum"] == 0
        assert await pool.transfers(head - 2, head - 1, [paused_tron.tokens["USDT"]]) == []
        assert lagging.calls["wallet/getblockbylimitnext"] == 0
        await pool.close()


async def test_429s_errors_and_dropped_connections_fail_over(paused_tron: TronDevnet) -> None:
    head = paused_tron.head()
    async with hostile_tron_nodes([paused_tron.url] * 3) as nodes:
        limited, down, honest = nodes
        limited.failing, down.failing = "429", "down"
        pool = pool_over(nodes, weights=(100, 50, 1), quorum=1)
        assert await pool.head() == head
        assert [h.number for h in await pool.headers([head])] == [head]
        assert honest.calls["wallet/getblockbynum"] == 1
        assert limited.failures > 0
        assert down.failures > 0

        honest.failing = "error"
        with pytest.raises(ChainUnavailable):
            await pool.head()
        await pool.close()
