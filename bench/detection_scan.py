"""Benchmark 2, detection scan: how fast the watcher engine works through blocks full of
token transfers, beside raw `eth_getLogs` over the same blocks.

The chain (anvil) gets blocks of thousands of USDT transfers, most of them to strangers
and a few (`--hit-ratio`) to watched addresses. The real `WatcherEngine` scans them from a
cursor below the first block to the head, against a real watcher schema (migrated, the
watch set loaded and already backfilled, as in steady state), with a fixed window of
`--window-blocks` blocks; every scan must record exactly the transfers to watched
addresses. It runs twice per round: with 1,000 watched addresses and with 100,000 (the
same 1,000 plus 99,000 that receive nothing), so the only difference is the size of the
watch set. The baseline, in the same round, is a raw `eth_getLogs` POST plus JSON
decoding over the same windows (httpx, the engine's transport; aiohttp for reference).

Goals (issue 6): the engine at least half the raw rate; the per-block cost unchanged
(within 10%) when the watch set grows from 1,000 to 100,000.

    uv run python -m bench.detection_scan [--quick] [--rounds 5] [--blocks 20] …
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
from pydantic import SecretStr
from sqlalchemy import func, select

from bench.chain import BenchChain, bench_chain, random_address
from bench.common import DATABASE_URL, Report, Spread, goal, log, parser
from stablegate_common.chains.evm import TRANSFER_TOPIC, EvmClient
from stablegate_common.config import DatabaseSettings
from stablegate_common.core.assets import AssetRegistry, Network
from stablegate_common.db import Database
from stablegate_common.migrations import upgrade
from stablegate_common.watcher import EngineConfig, WatcherEngine
from stablegate_common.watcher.models import ObservedTransfer
from stablegate_watcher_eth.app import MIGRATIONS

RECIPIENTS_PER_TX = 500
SMALL_WATCH_SET = 1_000
PER_BLOCK_TOLERANCE = 1.10  # "unchanged": the 100k watch set within 10% of the 1k one
WORK_DIR = Path(__file__).resolve().parent / "results" / "work" / "detection_scan"


@dataclass(frozen=True)
class Fixture:
    first_block: int
    last_block: int
    transfers: int  # registered-token Transfer logs in the blocks
    hits: int  # of which to watched addresses
    watched: list[str]  # hit targets first, then addresses that receive nothing

    @property
    def blocks(self) -> int:
        return self.last_block - self.first_block + 1

    def windows(self, size: int) -> list[tuple[int, int]]:
        return [
            (start, min(start + size - 1, self.last_block))
            for start in range(self.first_block, self.last_block + 1, size)
        ]


async def build_fixture(
    chain: BenchChain, *, blocks: int, per_block: int, hit_ratio: float, watched: int
) -> Fixture:
    """Blocks of `per_block` transfers; the hits go to the first 1,000 watched addresses."""
    rng = random.Random(6)
    watch_list = [random_address() for _ in range(watched)]
    targets = watch_list[:SMALL_WATCH_SET]
    sender = random_address()
    await chain.fund(sender, whole_tokens=10**9)
    await chain.set_automine(False)
    first = await chain.head() + 1
    hits = 0
    hashes: list[str] = []
    for _ in range(blocks):
        payments = []
        for _ in range(per_block):
            hit = rng.random() < hit_ratio
            hits += hit
            payments.append(
                (rng.choice(targets) if hit else random_address(), rng.randint(1, 10**8))
            )
        txs = [
            await chain.batch_transfer_tx(sender, payments[i : i + RECIPIENTS_PER_TX])
            for i in range(0, len(payments), RECIPIENTS_PER_TX)
        ]
        hashes += await chain.send_transactions(txs)
        await chain.mine()
    await chain.wait_receipts(hashes, timeout=300)
    last = await chain.head()
    if last != first + blocks - 1:
        raise RuntimeError(f"expected blocks {first}..{first + blocks - 1}, the head is {last}")
    return Fixture(first, last, blocks * per_block, hits, watch_list)


# -- the baseline: raw eth_getLogs -----------------------------------------------------------


def _get_logs(window: tuple[int, int], contracts: list[str]) -> dict[str, Any]:
    query = {
        "fromBlock": hex(window[0]),
        "toBlock": hex(window[1]),
        "address": contracts,
        "topics": [TRANSFER_TOPIC],
    }
    return {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [query]}


async def raw_httpx(
    url: str, windows: list[tuple[int, int]], contracts: list[str]
) -> tuple[float, int]:
    async with httpx.AsyncClient(timeout=120) as http:
        await http.post(url, json=_get_logs(windows[0], contracts))  # the connection
        started = time.perf_counter()
        logs = 0
        for window in windows:
            logs += len((await http.post(url, json=_get_logs(window, contracts))).json()["result"])
        return time.perf_counter() - started, logs


async def raw_aiohttp(
    url: str, windows: list[tuple[int, int]], contracts: list[str]
) -> tuple[float, int]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=_get_logs(windows[0], contracts)) as response:
            await response.read()  # the connection, before the clock starts
        started = time.perf_counter()
        logs = 0
        for window in windows:
            async with http.post(url, json=_get_logs(window, contracts)) as response:
                logs += len((await response.json())["result"])
        return time.perf_counter() - started, logs


# -- the subject: the watcher engine ---------------------------------------------------------


async def _load_watch_set(schema: str, addresses: list[str]) -> None:
    """The watch set in steady state: announced and already backfilled."""
    now = datetime.now(UTC)
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.copy_records_to_table(
            "watched_addresses",
            schema_name=schema,
            columns=["address", "source", "announced_at", "backfilled_at"],
            records=[(a, "provisioned", now, now) for a in addresses],
        )
        # Now rather than by autovacuum in the middle of the timed scan.
        await conn.execute(f'VACUUM ANALYZE "{schema}".watched_addresses')
    finally:
        await conn.close()


async def _drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def engine_scan(
    chain: BenchChain, network: Network, fixture: Fixture, watched: list[str], window: int
) -> tuple[float, int]:
    """Seconds for the engine to scan the fixture's blocks; and the transfers it recorded."""
    schema = f"bench_scan_{secrets.token_hex(4)}"
    settings = DatabaseSettings(url=SecretStr(DATABASE_URL), DATABASE_SCHEMA=schema, pool_size=2)
    await asyncio.to_thread(upgrade, MIGRATIONS, settings)
    db = Database(settings, application_name="stablegate-bench")
    client = EvmClient(chain.rpc_url, timeout_seconds=120)
    try:
        await _load_watch_set(schema, watched)
        config = EngineConfig(
            confirmations=3,
            reorg_window=64,
            window_blocks=window,
            max_window_blocks=window,
            start_block=fixture.first_block,
        )
        engine = WatcherEngine(db, client, network, config, producer="bench")
        await engine.resume()  # loads the watch set: start-up, not scanning
        started = time.perf_counter()
        while await engine.tick():
            pass
        elapsed = time.perf_counter() - started
        async with db.sessions() as session:
            recorded = int(
                await session.scalar(select(func.count()).select_from(ObservedTransfer)) or 0
            )
        return elapsed, recorded
    finally:
        await client.close()
        await db.dispose()
        await _drop_schema(schema)


# -- rounds ----------------------------------------------------------------------------------


async def one_round(
    chain: BenchChain, network: Network, fixture: Fixture, window: int, order: int
) -> dict[str, float]:
    """The four measurements, in an order that alternates between rounds."""
    contracts = sorted(asset.contract for asset in network.assets)
    windows = fixture.windows(window)
    small, large = fixture.watched[:SMALL_WATCH_SET], fixture.watched

    async def raw() -> float:
        seconds, logs = await raw_httpx(chain.rpc_url, windows, contracts)
        _check(logs, fixture.transfers, "raw eth_getLogs (httpx)")
        return seconds

    async def raw_aio() -> float:
        seconds, logs = await raw_aiohttp(chain.rpc_url, windows, contracts)
        _check(logs, fixture.transfers, "raw eth_getLogs (aiohttp)")
        return seconds

    async def engine(watched: list[str]) -> float:
        seconds, recorded = await engine_scan(chain, network, fixture, watched, window)
        _check(recorded, fixture.hits, f"engine with {len(watched):,} watched")
        return seconds

    steps = [
        ("raw_httpx", raw),
        ("raw_aiohttp", raw_aio),
        ("engine_small", lambda: engine(small)),
        ("engine_large", lambda: engine(large)),
    ]
    if order % 2:
        steps.reverse()
    return {name: await step() for name, step in steps}


def _check(got: int, expected: int, what: str) -> None:
    if got != expected:
        raise RuntimeError(f"{what}: {got:,} transfers, expected {expected:,}")


async def run(args: Any) -> None:
    settings = {
        "blocks": args.blocks,
        "transfers_per_block": args.per_block,
        "hit_ratio": args.hit_ratio,
        "watch_sets": [SMALL_WATCH_SET, args.watched],
        "window_blocks": args.window_blocks,
        "confirmations": 3,
    }
    report = Report("detection_scan", args, settings)
    async with bench_chain(WORK_DIR, gas_limit=10**10) as chain:
        network = AssetRegistry.from_mapping(chain.overlay).network("ethereum")
        log(f"building {args.blocks} blocks of {args.per_block:,} transfers")
        started = time.perf_counter()
        fixture = await build_fixture(
            chain,
            blocks=args.blocks,
            per_block=args.per_block,
            hit_ratio=args.hit_ratio,
            watched=args.watched,
        )
        settings["fixture_seconds"] = round(time.perf_counter() - started, 1)
        settings["transfers"] = fixture.transfers
        settings["hits"] = fixture.hits
        log("warming up (imports, mapper configuration, statement caches)")
        warm = Fixture(fixture.first_block, fixture.first_block, 0, 0, fixture.watched)
        await engine_scan(chain, network, warm, fixture.watched[:SMALL_WATCH_SET], 1)
        rounds = []
        for number in range(args.rounds):
            log(f"round {number + 1}/{args.rounds}")
            rounds.append(await one_round(chain, network, fixture, args.window_blocks, number))
    _summarize(report, fixture, rounds, args.watched)


def _summarize(
    report: Report, fixture: Fixture, rounds: list[dict[str, float]], large: int
) -> None:
    def rate(name: str) -> Spread:
        return Spread.of([fixture.transfers / r[name] for r in rounds])

    def per_block(name: str) -> Spread:
        return Spread.of([r[name] / fixture.blocks for r in rounds])

    engine_vs_raw = Spread.of([r["raw_httpx"] / r["engine_large"] for r in rounds])
    growth = Spread.of([r["engine_large"] / r["engine_small"] for r in rounds])
    rows = [
        (
            "raw eth_getLogs + JSON (httpx)",
            rate("raw_httpx").show(),
            per_block("raw_httpx").show(1, 1000),
        ),
        (
            "raw eth_getLogs + JSON (aiohttp)",
            rate("raw_aiohttp").show(),
            per_block("raw_aiohttp").show(1, 1000),
        ),
        (
            f"engine, {SMALL_WATCH_SET:,} watched",
            rate("engine_small").show(),
            per_block("engine_small").show(1, 1000),
        ),
        (
            f"engine, {large:,} watched",
            rate("engine_large").show(),
            per_block("engine_large").show(1, 1000),
        ),
    ]
    report.add_table(
        f"Detection scan: {fixture.blocks} blocks x {fixture.transfers // fixture.blocks:,} "
        f"transfers, {fixture.hits:,} to watched addresses; "
        f"median (min..max) of {len(rounds)} rounds",
        ["scan", "transfers/s", "ms per block"],
        rows,
    )
    report.add_table(
        "Ratios (per round, then median)",
        ["ratio", "value", "goal"],
        [
            (f"engine ({large:,} watched) / raw httpx rate", engine_vs_raw.show(2), ">= 0.50"),
            (
                f"per-block cost {large:,} / {SMALL_WATCH_SET:,} watched",
                growth.show(2),
                f"<= {PER_BLOCK_TOLERANCE:.2f}",
            ),
        ],
    )
    results = {
        "rounds": rounds,
        "transfers_per_second": {k: rate(k) for k in rounds[0]},
        "ms_per_block": {
            k: Spread.of([r[k] / fixture.blocks * 1000 for r in rounds]) for k in rounds[0]
        },
        "engine_over_raw": engine_vs_raw,
        "per_block_growth": growth,
    }
    goals = {
        "engine_at_least_half_raw": goal(
            engine_vs_raw.median >= 0.5, f"engine/raw = {engine_vs_raw.median:.2f}"
        ),
        "per_block_cost_unchanged": goal(
            growth.median <= PER_BLOCK_TOLERANCE,
            f"{large:,}/{SMALL_WATCH_SET:,} = {growth.median:.2f}",
        ),
    }
    report.finish(results, goals)


def main() -> None:
    cli = parser(__doc__.splitlines()[0], rounds=5)
    cli.add_argument("--blocks", type=int, default=20, help="blocks of transfers (default 20)")
    cli.add_argument("--per-block", type=int, default=5_000, help="transfers per block (5,000)")
    cli.add_argument("--hit-ratio", type=float, default=0.02, help="share to watched addresses")
    cli.add_argument("--watched", type=int, default=100_000, help="the large watch set (100,000)")
    cli.add_argument(
        "--window-blocks", type=int, default=2, help="blocks per eth_getLogs window (default 2)"
    )
    args = cli.parse_args()
    if args.quick:
        args.blocks, args.per_block, args.rounds = 3, 1_000, 1
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
