"""The provider pool against hostile providers in front of the session's anvil: quorum
head, routing away from lagging replicas, failover with back-off on errors and 429s, and
per-provider metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from stablegate_common.chains import ChainUnavailable
from stablegate_common.chains.endpoints import RpcEndpoint
from stablegate_common.chains.pool import PoolPolicy
from stablegate_common.chains.provider_pools import EvmProviderPool, evm_pool
from tests.conftest import unique
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.hostile_rpc import HostileRpc, hostile_providers

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def three(anvil: AnvilChain) -> AsyncIterator[list[HostileRpc]]:
    async with hostile_providers([anvil.rpc_url] * 3) as proxies:
        yield proxies


def pool_over(
    proxies: Sequence[HostileRpc],
    *,
    weights: Sequence[float] = (),
    quorum: int = 1,
    backoff: float = 0.2,
) -> tuple[str, EvmProviderPool]:
    network = unique("net")
    endpoints = [
        RpcEndpoint(url=p.url, name=p.name, weight=weights[i] if weights else 1.0)
        for i, p in enumerate(proxies)
    ]
    policy = PoolPolicy(quorum=quorum, backoff_seconds=backoff, max_backoff_seconds=1.0)
    return network, evm_pool(network, endpoints, policy, timeout_seconds=3)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_the_head_is_the_highest_that_a_quorum_of_providers_has(
    anvil: AnvilChain, three: list[HostileRpc]
) -> None:
    await anvil.mine(6)
    real = await anvil.block_number()
    for proxy, lag in zip(three, (0, 2, 5), strict=True):
        proxy.lag = lag
    expected = {1: real, 2: real - 2, 3: real - 5}
    for quorum, head in expected.items():
        network, pool = pool_over(three, quorum=quorum)
        assert await pool.head() == head
        assert metric("stablegate_rpc_head_lag_blocks", network=network, provider="p2") == 5
        assert metric("stablegate_rpc_quorum", network=network) == quorum
        # p2 is 5 behind, over the allowed 3: two of three healthy.
        assert metric("stablegate_rpc_healthy_providers", network=network) == 2
        await pool.close()

    three[0].failing = "down"
    three[1].failing = "429"
    network, pool = pool_over(three, quorum=2)
    with pytest.raises(ChainUnavailable, match="1 of 3 providers answered head, quorum is 2"):
        await pool.head()
    # Only p2 answers: one healthy provider, below the quorum of two (the alert's case).
    assert metric("stablegate_rpc_healthy_providers", network=network) == 1
    assert metric("stablegate_rpc_provider_healthy", network=network, provider="p0") == 0
    await pool.close()


async def test_a_lagging_provider_is_never_asked_for_blocks_above_its_head(
    anvil: AnvilChain, three: list[HostileRpc]
) -> None:
    """The preferred provider lags: logs and headers of the newest blocks come from the
    one that has them, so a payment in them is found rather than answered with []."""
    recipient = fresh_address()
    await anvil.transfer(anvil.usdt, recipient, 7_000_000)
    real = await anvil.block_number()
    lagging, honest, _ = three
    lagging.lag = 3
    _, pool = pool_over(three[:2], weights=(100, 1))
    assert await pool.head() == real

    transfers = await pool.transfers_to(real - 4, real, [anvil.usdt], {recipient})
    headers = await pool.headers(range(real - 4, real + 1))

    assert [t.amount_base_units for t in transfers] == [7_000_000]
    assert [h.number for h in headers] == list(range(real - 4, real + 1))
    assert lagging.calls["eth_getLogs"] == 0
    assert lagging.calls["eth_getBlockByNumber"] == 0
    assert honest.calls["eth_getLogs"] == 1
    # A reconciler's balance read at the head goes to a provider that has the head.
    balances = await pool.token_balances([(anvil.usdt, recipient)], block=real)
    assert balances == [7_000_000]
    assert lagging.calls["eth_call"] == 0
    # Caught up, the preferred (heavier) provider takes the traffic back.
    lagging.lag = 0
    await pool.head()
    assert await pool.transfers_to(real - 5, real - 3, [anvil.usdt], {recipient}) == []
    assert lagging.calls["eth_getLogs"] == 1
    await pool.close()


async def test_a_head_that_goes_backwards_lowers_what_the_provider_is_asked(
    anvil: AnvilChain, three: list[HostileRpc]
) -> None:
    await anvil.mine(4)
    real = await anvil.block_number()
    flapping, honest, _ = three
    flapping.replica_lags = (0, 4)  # first answer from a fresh replica, then a stale one
    _, pool = pool_over(three[:2], weights=(100, 1))
    assert await pool.head() == real  # both report the head (the honest one too)
    # The headers call lands on the stale replica: it answers null, the pool marks the
    # provider behind and the honest one serves the same call.
    headers = await pool.headers([real])
    assert headers[0].hash == await anvil.block_hash(real)
    assert honest.calls["eth_getBlockByNumber"] == 1
    assert pool.providers[0].known_head == real - 1
    await pool.close()


async def test_errors_and_429s_fail_over_with_growing_back_off(
    anvil: AnvilChain, three: list[HostileRpc]
) -> None:
    limited, erring, honest = three
    limited.failing, erring.failing = "429", "error"
    network, pool = pool_over(three, weights=(10, 5, 1), backoff=0.3)
    real = await anvil.block_number()

    assert await pool.head() == real
    assert await pool.token_decimals(anvil.usdt) == 6  # served by the honest one
    assert honest.calls["eth_call"] == 1
    assert (
        metric(
            "stablegate_rpc_errors_total", network=network, provider="p0", kind="chain_unavailable"
        )
        == 1
    )
    assert (
        metric(
            "stablegate_rpc_errors_total", network=network, provider="p1", kind="chain_unavailable"
        )
        == 1
    )

    # In back-off they are not asked at all; the back-off doubles on each failure.
    asked = limited.calls["eth_blockNumber"]
    await pool.head()
    assert limited.calls["eth_blockNumber"] == asked
    await asyncio.sleep(0.35)
    await pool.head()  # asked again, fails again: now 0.6 s
    assert limited.calls["eth_blockNumber"] == asked + 1
    await asyncio.sleep(0.35)
    await pool.head()
    assert limited.calls["eth_blockNumber"] == asked + 1

    # Recovered: once its back-off ends it answers, and the heavier weight wins it back.
    limited.behave()
    erring.behave()
    await asyncio.sleep(0.7)
    await pool.head()
    await pool.token_decimals(anvil.usdt)
    assert limited.calls["eth_call"] == 1
    assert metric("stablegate_rpc_healthy_providers", network=network) == 3
    assert metric("stablegate_rpc_requests_total", network=network, provider="p0") >= 2
    await pool.close()


async def test_every_provider_failing_is_chain_unavailable(three: list[HostileRpc]) -> None:
    for proxy in three:
        proxy.failing = "error"
    _, pool = pool_over(three)
    with pytest.raises(ChainUnavailable):
        await pool.head()
    with pytest.raises(ChainUnavailable, match="no available provider"):
        await pool.token_decimals("0x" + "11" * 20)
    await pool.close()


async def test_providers_of_different_chains_are_refused(
    anvil: AnvilChain, anvil_bsc: AnvilChain
) -> None:
    async with hostile_providers([anvil.rpc_url, anvil_bsc.rpc_url]) as proxies:
        _, pool = pool_over(proxies)
        with pytest.raises(Exception, match="providers serve different chains"):
            await pool.chain_id()
        await pool.close()
