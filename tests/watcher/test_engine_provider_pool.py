"""The watcher engine, unchanged, scanning through a provider pool of hostile providers:
a provider that is behind never moves the cursor past its own head, a provider on
another fork cannot get its blocks recorded while a quorum disagrees, and with a quorum
of two the scan follows the newest block two providers agree on by hash (it does not
stall in error back-off while fewer than two have the newest block)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from devnet.devnet import free_port, start_anvil
from stablegate_common.chains import ChainUnavailable
from stablegate_common.chains.endpoints import RpcEndpoint
from stablegate_common.chains.pool import PoolPolicy
from stablegate_common.chains.provider_pools import EvmProviderPool, evm_pool
from stablegate_common.db import Database
from stablegate_common.watcher import WatcherEngine
from stablegate_common.watcher.repository import load_cursor, stored_hashes
from tests.conftest import unique
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.hostile_rpc import HostileRpc, hostile_providers
from tests.fixtures.watcher import EngineFactory, announce, transfer_rows

pytestmark = pytest.mark.asyncio(loop_scope="session")


def pool_of(
    proxies: Sequence[HostileRpc], weights: Sequence[float], quorum: int
) -> EvmProviderPool:
    endpoints = [
        RpcEndpoint(url=p.url, name=p.name, weight=w) for p, w in zip(proxies, weights, strict=True)
    ]
    policy = PoolPolicy(quorum=quorum, backoff_seconds=0.2, max_backoff_seconds=0.5)
    return evm_pool(unique("net"), endpoints, policy, timeout_seconds=3)


async def tick_through(engine: WatcherEngine, ticks: int = 40) -> list[str]:
    """Tick as the scanner loop does, noting the chain errors it would back off on."""
    errors: list[str] = []
    for _ in range(ticks):
        try:
            if not await engine.tick():
                await asyncio.sleep(0.05)
        except ChainUnavailable as exc:
            errors.append(str(exc))
            await asyncio.sleep(0.1)
    return errors


async def cursor_of(db: Database, engine: WatcherEngine) -> int:
    async with db.sessions() as session:
        cursor = await load_cursor(session, engine.name)
    assert cursor is not None
    return cursor


def fork_errors(pool: EvmProviderPool, provider: str) -> float:
    labels = {"network": pool.network, "provider": provider, "kind": "fork"}
    return REGISTRY.get_sample_value("stablegate_rpc_errors_total", labels) or 0.0


async def kept_hashes_off(db: Database, chain: AnvilChain) -> list[int]:
    """Heights whose kept block hash is not the chain's."""
    async with db.sessions() as session:
        kept = await stored_hashes(session)
    return [n for n, h in kept if h != await chain.block_hash(n)]


@pytest_asyncio.fixture(loop_scope="session")
async def fork(
    anvil: AnvilChain, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AnvilChain]:
    """A second anvil forked from the session chain at its head: same chain id, same
    tokens and balances, blocks of its own from here on."""
    log_path = tmp_path_factory.mktemp("fork") / "anvil-fork.log"
    process = await asyncio.to_thread(
        start_anvil,
        free_port(),
        anvil.chain_id,
        log_path=log_path,
        extra_args=["--fork-url", anvil.rpc_url],
    )
    assets = log_path.parent / "assets.json"
    assets.write_text(json.dumps(anvil.assets_overlay))
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            yield AnvilChain(process, anvil.tokens, anvil.assets_overlay, assets, http)
    finally:
        process.stop()


async def test_a_provider_behind_never_moves_the_cursor_past_its_head(
    anvil: AnvilChain, watcher_db: Database, make_engine: EngineFactory
) -> None:
    recipient = fresh_address()
    async with hostile_providers([anvil.rpc_url, anvil.rpc_url]) as (lagging, honest):
        pool = pool_of([lagging, honest], weights=(100, 1), quorum=1)
        engine = await make_engine(client=pool)
        await announce(watcher_db, engine.network, [recipient])
        await engine.resume()
        # The honest provider is down; the lagging one is all there is.
        honest.failing = "down"
        lagging.lag = 4
        await anvil.mine(6)
        await anvil.transfer(anvil.usdt, recipient, 5_000_000)
        paid_in = await anvil.block_number()
        await tick_through(engine, 10)

        # Scanned up to the lagging provider's head, and not one block further.
        assert await cursor_of(watcher_db, engine) == paid_in - 4
        assert await transfer_rows(watcher_db) == []

        # It catches up: the block is scanned, with its payment, exactly once.
        lagging.lag = 0
        await tick_through(engine, 10)
        rows = await transfer_rows(watcher_db)
        assert [(r.block_number, r.amount) for r in rows] == [(paid_in, 5_000_000)]
        assert await cursor_of(watcher_db, engine) >= paid_in
        await pool.close()


async def test_a_flapping_provider_fails_over_and_the_payment_is_recorded_once(
    anvil: AnvilChain, watcher_db: Database, make_engine: EngineFactory
) -> None:
    """Replicas at different heights, 429s and errors in turn: the scan still finds the
    payment, once."""
    recipient = fresh_address()
    async with hostile_providers([anvil.rpc_url] * 3) as proxies:
        flapping, limited, erring = proxies
        pool = pool_of(proxies, weights=(10, 5, 1), quorum=1)
        engine = await make_engine(client=pool)
        await announce(watcher_db, engine.network, [recipient])
        await engine.resume()
        flapping.replica_lags = (0, 3, 1)  # heads go backwards between calls
        limited.fail_next, limited.failing = 3, "429"
        erring.fail_next = 2
        await anvil.transfer(anvil.usdt, recipient, 1_250_000)
        paid_in = await anvil.block_number()
        await anvil.mine(4)
        await tick_through(engine, 30)
        limited.behave()

        rows = await transfer_rows(watcher_db)
        assert [(r.block_number, r.amount) for r in rows] == [(paid_in, 1_250_000)]
        assert limited.failures > 0
        await pool.close()


async def test_a_provider_on_another_fork_is_outvoted(
    anvil: AnvilChain, fork: AnvilChain, watcher_db: Database, make_engine: EngineFactory
) -> None:
    """The preferred provider serves a fork the two others do not: its blocks never reach
    the engine, its payment is never recorded, the quorum's payment is."""
    on_fork, on_main = fresh_address(), fresh_address()
    upstreams = [fork.rpc_url, anvil.rpc_url, anvil.rpc_url]
    async with hostile_providers(upstreams) as proxies:
        forked = proxies[0]
        pool = pool_of(proxies, weights=(100, 1, 1), quorum=2)
        engine = await make_engine(client=pool, start_block=await anvil.block_number() + 1)
        await announce(watcher_db, engine.network, [on_fork, on_main])
        await engine.resume()
        await fork.transfer(fork.usdt, on_fork, 3_000_000)
        await anvil.transfer(anvil.usdt, on_main, 4_000_000)
        await fork.mine(2)
        await anvil.mine(2)
        assert await fork.block_hash(await anvil.block_number()) != await anvil.block_hash(
            await anvil.block_number()
        )

        errors = await tick_through(engine, 20)

        rows = await transfer_rows(watcher_db)
        assert [(r.to_address, r.amount) for r in rows] == [(on_main, 4_000_000)]
        assert errors == []
        assert fork_errors(pool, "p0") > 0  # outvoted, and put in back-off
        assert forked.calls["eth_getBlockByNumber"] > 0
        await pool.close()


async def test_a_replica_answering_empty_logs_for_a_while_loses_no_payment(
    anvil: AnvilChain, watcher_db: Database, make_engine: EngineFactory
) -> None:
    """Headers come back, logs come back `[]`: nothing in the answers is inconsistent,
    only the headers' bloom (or a by-hash query) shows the logs are missing."""
    recipient = fresh_address()
    async with hostile_providers([anvil.rpc_url, anvil.rpc_url]) as proxies:
        pool = pool_of(proxies, weights=(1, 1), quorum=1)
        engine = await make_engine(client=pool)
        await announce(watcher_db, engine.network, [recipient])
        await engine.resume()
        for proxy in proxies:
            proxy.empty_logs_for(1.5)
        await anvil.transfer(anvil.usdt, recipient, 2_500_000)
        paid_in = await anvil.block_number()
        await tick_through(engine, 10)  # within the empty-logs period
        await asyncio.sleep(1.5)
        await tick_through(engine, 10)

        rows = await transfer_rows(watcher_db)
        assert [(r.block_number, r.amount) for r in rows] == [(paid_in, 2_500_000)]
        await pool.close()


async def test_the_head_is_the_newest_block_a_quorum_has_by_hash(
    anvil: AnvilChain, fork: AnvilChain
) -> None:
    """p0 (preferred) and p1 report the same newest height on two forks, p2 is two blocks
    behind on p1's: the newest block two providers have is p2's head, not the newest
    height two of them report."""
    await fork.transfer(fork.usdt, fresh_address(), 1_000_000)  # the chains part here
    await anvil.transfer(anvil.usdt, fresh_address(), 1_000_000)
    await fork.mine(4)
    await anvil.mine(4)
    real = await anvil.block_number()
    assert await fork.block_number() == real
    async with hostile_providers([fork.rpc_url, anvil.rpc_url, anvil.rpc_url]) as proxies:
        forked, _, lagging = proxies
        lagging.lag = 2
        pool = pool_of(proxies, weights=(100, 1, 1), quorum=2)

        assert await pool.head() == real - 2
        headers = await pool.headers(range(real - 4, real - 1))
        assert [h.hash for h in headers] == [
            await anvil.block_hash(n) for n in range(real - 4, real - 1)
        ]
        assert fork_errors(pool, "p0") == 1  # outvoted at real - 2, put in back-off
        assert forked.calls["eth_getLogs"] == 0

        # p2 catches up: two providers have the newest block now.
        lagging.lag = 0
        assert await pool.head() == real
        await pool.close()


async def test_under_churn_the_scan_follows_the_newest_block_two_providers_agree_on(
    anvil: AnvilChain, fork: AnvilChain, watcher_db: Database, make_engine: EngineFactory
) -> None:
    """Quorum two of three: p0 (preferred) serves a fork, p1 and p2 the chain at lags that
    change phase by phase (p1 first from replicas at different heights). In every phase
    the cursor reaches the newest block both p1 and p2 have and never passes it, the
    ticks there succeed (no error back-off), and only the chain's payment is recorded,
    once."""
    on_fork, on_main = fresh_address(), fresh_address()
    upstreams = [fork.rpc_url, anvil.rpc_url, anvil.rpc_url]
    async with hostile_providers(upstreams) as proxies:
        _, flapping, lagging = proxies
        pool = pool_of(proxies, weights=(100, 1, 1), quorum=2)
        engine = await make_engine(client=pool, start_block=await anvil.block_number() + 1)
        await announce(watcher_db, engine.network, [on_fork, on_main])
        await engine.resume()
        await fork.transfer(fork.usdt, on_fork, 3_000_000)
        await anvil.transfer(anvil.usdt, on_main, 4_000_000)
        paid_in = await anvil.block_number()

        # (p1's replica lags, p2's lag, blocks mined on each chain before the phase)
        phases = [((0, 2, 1), 3, 5), ((1,), 1, 2), ((0,), 2, 3), ((), 0, 1)]
        for p1_lags, p2_lag, mined in phases:
            await fork.mine(mined)
            await anvil.mine(mined)
            flapping.replica_lags, lagging.lag = p1_lags, p2_lag
            real = await anvil.block_number()
            bound = real - max(p2_lag, min(p1_lags, default=0))
            phase = (p1_lags, p2_lag)
            for _ in range(40):
                with contextlib.suppress(ChainUnavailable):
                    await engine.tick()
                cursor = await cursor_of(watcher_db, engine)
                assert cursor <= bound, (phase, cursor, bound)
                if cursor == bound:
                    break
            assert cursor == bound, (phase, cursor, bound)
            # At the bound the scan is live: ticks succeed rather than back off on errors.
            errors = await tick_through(engine, 5)
            assert errors == [], phase
            assert await cursor_of(watcher_db, engine) == bound, phase

        rows = await transfer_rows(watcher_db)
        assert [(r.to_address, r.block_number, r.amount) for r in rows] == [
            (on_main, paid_in, 4_000_000)
        ]
        assert await kept_hashes_off(watcher_db, anvil) == []
        assert fork_errors(pool, "p0") > 0
        await pool.close()
