"""Benchmark 4, sustained pipeline: payments at a fixed rate (create the intent, pay it on
chain, confirm, `payment_intent.paid` webhook) for `--duration` seconds on this machine,
then proof that none was lost or doubled and that the ledger equals the chain.

The whole suite runs as processes on a local anvil (devnet settings: 3 confirmations,
the watcher polling every 0.25 s). Intents are created open-loop at `--rate` per second
through the API; each is paid by its own USDT transfer, sent with the others of the same
second in one JSON-RPC batch, and a block is mined every `--block-time` seconds (automine
off), so every payment confirms two blocks after the one it landed in. After the creation
phase, blocks keep coming until every paid webhook arrived or `--drain` seconds passed.

Checks at the end: each intent has exactly one `payment_intent.paid` event (by event id)
and the status `paid`; the reconciler booked each intent once; every deposit address's
ledger balance equals its on-chain `balanceOf`, and the merchant's balance equals the
sum paid. When the suite cannot keep the rate, the figures say what it sustained (the
paid webhooks per second over the steady part) and `--profile` shows where the time goes.

    uv run python -m bench.pipeline [--quick] [--duration 300] [--rate 100] [--profile 30]
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import Report, goal, log, parser, percentile
from bench.payments import SERVICES, PaymentStack, create_intent, payment_stack, random_amount
from bench.profile import render, start_recording
from bench.stack import cpu_seconds, machine_busy

WORK_DIR = Path(__file__).resolve().parent / "results" / "work" / "pipeline"
IN_FLIGHT = 400  # creations waiting for the gateway at once, at most


@dataclass
class Created:
    intent_id: str
    address: str
    units: int
    created_at: float  # monotonic, when the API answered


@dataclass
class Run:
    created: list[Created] = field(default_factory=list)
    failed_creations: int = 0
    issued: int = 0  # requests sent; below rate x duration when the gateway fell behind
    unpaid: list[tuple[str, int]] = field(default_factory=list)  # waiting for the next block
    blocks: int = 0
    samples: list[dict[str, float]] = field(default_factory=list)
    send_errors: int = 0


async def produce(stack: PaymentStack, run: Run, rate: float, seconds: float) -> None:
    """Create intents on a fixed schedule; each one is queued for payment."""
    slots = asyncio.Semaphore(IN_FLIGHT)
    rng = random.Random(4)
    async with stack.suite.api(connections=IN_FLIGHT) as api:

        async def one() -> None:
            try:
                intent = await create_intent(api, random_amount(rng))
            except Exception as exc:
                run.failed_creations += 1
                log(f"creation failed: {exc!r}"[:200])
                return
            finally:
                slots.release()
            units = int(intent["amount_base_units"])
            run.created.append(
                Created(intent["id"], intent["deposit_address"], units, time.monotonic())
            )
            run.unpaid.append((intent["deposit_address"], units))

        start = time.monotonic()
        tasks = []
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            if time.monotonic() - start >= seconds:
                slots.release()  # the phase is over: what was not sent is not served
                break
            tasks.append(asyncio.create_task(one()))
        run.issued = len(tasks)
        await asyncio.gather(*tasks)


async def mine(stack: PaymentStack, run: Run, block_time: float, stop: asyncio.Event) -> None:
    """Every block time: send the waiting payments, then mine a block."""
    chain = stack.chain
    next_block = time.monotonic()
    while not stop.is_set():
        next_block += block_time
        batch, run.unpaid = run.unpaid, []
        if batch:
            try:
                await chain.send_transactions(await chain.transfer_txs(stack.customer, batch))
            except Exception as exc:
                run.send_errors += 1
                log(f"sending {len(batch)} payments failed: {exc!r}"[:200])
        await chain.mine()
        run.blocks += 1
        await asyncio.sleep(max(0.0, next_block - time.monotonic()))


async def sample(stack: PaymentStack, run: Run, stop: asyncio.Event) -> None:
    """Once a second: how many were created and how many paid webhooks arrived."""
    start = time.monotonic()
    while not stop.is_set():
        paid = len({a.object_id for a in stack.receiver.of_type("payment_intent.paid")})
        run.samples.append(
            {"t": time.monotonic() - start, "created": len(run.created), "paid": paid}
        )
        await asyncio.sleep(1.0)


def paid_ids(stack: PaymentStack) -> set[str]:
    return {a.object_id for a in stack.receiver.of_type("payment_intent.paid")}


async def drain(stack: PaymentStack, run: Run, seconds: float, *, stall: float = 120.0) -> float:
    """Wait until every created intent's paid webhook arrived, or no new one came for
    `stall` seconds, or `seconds` passed; return the seconds it took."""
    started = last_progress = time.monotonic()
    wanted = {c.intent_id for c in run.created}
    paid = 0
    while time.monotonic() - started < seconds and time.monotonic() - last_progress < stall:
        arrived = paid_ids(stack)
        if wanted <= arrived:
            break
        if len(arrived) > paid:
            paid, last_progress = len(arrived), time.monotonic()
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def wait_for_ledger(
    stack: PaymentStack, expected: int, seconds: float, *, stall: float = 120.0
) -> None:
    """The reconciler books after the gateway's webhook; wait until it booked `expected`
    intents, or booked nothing new for `stall` seconds, or `seconds` passed."""
    started = last_progress = time.monotonic()
    booked = -1
    while time.monotonic() - started < seconds and time.monotonic() - last_progress < stall:
        [row] = await stack.suite.query(
            "reconciler", "SELECT count(DISTINCT intent_id) AS n FROM journal_entries"
        )
        if row["n"] >= expected:
            return
        if row["n"] > booked:
            booked, last_progress = row["n"], time.monotonic()
        await asyncio.sleep(1.0)


async def verify(stack: PaymentStack, run: Run) -> dict[str, Any]:
    """Lost and doubled payments, and the ledger against the chain.

    Lost: paid on chain, yet the gateway's intent is not `paid`. Doubled: more than one
    `payment_intent.paid` event for an intent (the gateway's own events, or distinct event
    ids among the webhooks received), or more than one ledger entry. A paid webhook still
    in its retry schedule is counted apart: late, not lost.
    """
    created = {c.intent_id: c for c in run.created}
    received: dict[str, set[str]] = {}
    deliveries = 0
    for arrival in stack.receiver.of_type("payment_intent.paid"):
        received.setdefault(arrival.object_id, set()).add(arrival.event_id)
        deliveries += 1
    intents = await stack.suite.query("gateway", "SELECT id, status FROM payment_intents")
    status = {row["id"]: row["status"] for row in intents}
    paid_events = await stack.suite.query(
        "gateway",
        "SELECT object_id, count(*) AS n FROM events "
        "WHERE type = 'payment_intent.paid' GROUP BY object_id",
    )
    events = {row["object_id"]: int(row["n"]) for row in paid_events}
    booked = await stack.suite.query(
        "reconciler", "SELECT intent_id, count(*) AS n FROM journal_entries GROUP BY intent_id"
    )
    entries = {row["intent_id"]: int(row["n"]) for row in booked}
    addresses = [c.address.lower() for c in run.created]  # the API shows EIP-55 case
    on_chain = dict(zip(addresses, await stack.chain.balances(addresses), strict=True))
    ledger_rows = await stack.suite.query(
        "reconciler",
        "SELECT address, balance_base_units AS units FROM accounts "
        "WHERE kind = 'asset' AND network = 'ethereum' AND asset = 'USDT'",
    )
    ledger = {str(row["address"]).lower(): int(row["units"]) for row in ledger_rows}
    [balance] = await stack.suite.query(
        "reconciler",
        "SELECT coalesce(sum(available_base_units), 0) AS units FROM balances "
        "WHERE merchant_id = $1 AND network = 'ethereum' AND asset = 'USDT'",
        stack.suite.merchant_id,
    )
    paid_on_chain = {i for i, c in created.items() if on_chain[c.address.lower()]}
    statuses: dict[str, int] = {}
    for value in status.values():
        statuses[value] = statuses.get(value, 0) + 1
    return {
        "intents": len(created),
        "gateway_intents": len(status),  # more than `intents`: a creation answered 500 late
        "gateway_statuses": statuses,
        "paid_on_chain": len(paid_on_chain),
        "not_paid_on_chain": len(created) - len(paid_on_chain),  # the benchmark's sending
        "lost": sum(1 for i in paid_on_chain if status.get(i) != "paid"),
        "doubled": sum(1 for i in created if events.get(i, 0) > 1 or len(received.get(i, ())) > 1),
        "paid_webhook_not_received": sum(1 for i in paid_on_chain if not received.get(i)),
        "redelivered_webhooks": deliveries - sum(len(ids) for ids in received.values()),
        "ledger_booked_once": sum(1 for i in created if entries.get(i) == 1),
        "ledger_doubled": sum(1 for i in created if entries.get(i, 0) > 1),
        "ledger_missing": sum(1 for i in paid_on_chain if i not in entries),
        "addresses_ledger_differs_from_chain": sum(
            1 for a in addresses if ledger.get(a, 0) != on_chain[a]
        ),
        "chain_total_base_units": sum(on_chain.values()),
        "ledger_total_base_units": sum(ledger.get(a, 0) for a in addresses),
        "merchant_balance_base_units": int(balance["units"]),
        "amount_due_total_base_units": sum(c.units for c in run.created),
    }


def throughput(run: Run, duration: float) -> dict[str, float]:
    """Rates over the steady part of the creation phase (its last 80%)."""
    steady = [s for s in run.samples if duration * 0.2 <= s["t"] <= duration]
    if len(steady) < 2:
        steady = run.samples[:1] + run.samples[-1:]
    first, last = steady[0], steady[-1]
    span = max(1e-9, last["t"] - first["t"])
    at_end = min(run.samples, key=lambda s: abs(s["t"] - duration))
    return {
        "created_per_second": (last["created"] - first["created"]) / span,
        "paid_per_second": (last["paid"] - first["paid"]) / span,
        "backlog_at_end_of_creation": at_end["created"] - at_end["paid"],
    }


async def profile_services(stack: PaymentStack, seconds: float, out_dir: Path) -> list[Path]:
    recorders = []
    for name in SERVICES:
        out = out_dir / f"pipeline-{name}.pyspy.txt"
        recorders.append((out, start_recording(stack.suite.pid(name), seconds, out)))
    await asyncio.gather(*(asyncio.to_thread(r.wait) for _, r in recorders))
    return [out for out, _ in recorders]


def cpu_snapshot(stack: PaymentStack) -> dict[str, float]:
    snapshot = {name: cpu_seconds(stack.suite.pid(name)) for name in SERVICES}
    snapshot["anvil"] = cpu_seconds(stack.chain.process.pid)
    snapshot["benchmark"] = time.process_time()
    return snapshot


async def run(args: Any) -> None:
    settings = {
        "rate_per_second": args.rate,
        "duration_seconds": args.duration,
        "block_time_seconds": args.block_time,
        "webhook_events": ["payment_intent.paid"],
        "processes": "gateway, watcher-eth, reconciler, dashboard, anvil, this load generator",
    }
    report = Report("pipeline", args, settings)
    pool = int(args.rate * args.duration * 1.1) + 1000
    env = {
        "gateway": {
            "GATEWAY_RATE_LIMIT_PER_SECOND": str(max(100.0, args.rate * 5)),
            "GATEWAY_RATE_LIMIT_BURST": str(max(200, int(args.rate * 10))),
            "GATEWAY_ADDRESS_POOL_MIN_FREE": str(pool),
        }
    }
    log(f"starting the suite (deriving {pool:,} deposit addresses first)")
    async with payment_stack(
        "pipeline", WORK_DIR, events=["payment_intent.paid"], env=env
    ) as stack:
        settings["watcher_poll_interval_seconds"] = stack.setting(
            "watcher-eth", "WATCHER_POLL_INTERVAL_SECONDS"
        )
        settings["confirmations"] = stack.chain.overlay["networks"]["ethereum"]["confirmations"]
        await stack.chain.set_automine(False)
        run = Run()
        stop = asyncio.Event()
        background = [
            asyncio.create_task(mine(stack, run, args.block_time, stop)),
            asyncio.create_task(sample(stack, run, stop)),
        ]
        log(f"creating and paying {args.rate:g} intents/s for {args.duration:g} s")
        cpu_before, busy_before, started = cpu_snapshot(stack), machine_busy(), time.monotonic()
        profiling = None
        if args.profile:
            profiling = asyncio.create_task(_profile_later(stack, args, report))
        await produce(stack, run, args.rate, args.duration)
        creation_seconds = time.monotonic() - started
        cpu_after, busy_after = cpu_snapshot(stack), machine_busy()
        log(f"created {len(run.created):,} in {creation_seconds:.0f} s; draining")
        drained = await drain(stack, run, args.drain)
        stop.set()
        await asyncio.gather(*background)
        if profiling is not None:
            await profiling
        log("waiting for the ledger")
        paid = paid_ids(stack) & {c.intent_id for c in run.created}
        await wait_for_ledger(stack, len(paid), args.drain)
        checks = await verify(stack, run)
        latencies = end_to_end(stack, run)
    cpu = {k: (cpu_after[k] - cpu_before[k]) / creation_seconds for k in cpu_before}
    busy = (busy_after[0] - busy_before[0]) / max(1.0, busy_after[1] - busy_before[1])
    _summarize(report, args, run, checks, cpu, busy, creation_seconds, drained, latencies)


def end_to_end(stack: PaymentStack, run: Run) -> list[float]:
    """Seconds from each intent's creation to its first paid webhook."""
    paid_at: dict[str, float] = {}
    for arrival in stack.receiver.of_type("payment_intent.paid"):
        paid_at.setdefault(arrival.object_id, arrival.at)
    return [paid_at[c.intent_id] - c.created_at for c in run.created if c.intent_id in paid_at]


async def _profile_later(stack: PaymentStack, args: Any, report: Report) -> None:
    """py-spy every service for `--profile` seconds, from a third into the run."""
    await asyncio.sleep(args.duration / 3)
    log(f"profiling every service for {args.profile:g} s (py-spy)")
    files = await profile_services(stack, args.profile, args.results_dir)
    summaries = [render(path, top=20) for path in files]
    report.data["profiles"] = {path.name: text for path, text in zip(files, summaries, strict=True)}
    for text in summaries:
        print("\n" + text, flush=True)


def _summarize(
    report: Report,
    args: Any,
    run: Run,
    checks: dict[str, Any],
    cpu: dict[str, float],
    busy: float,
    creation_seconds: float,
    drained: float,
    latencies: list[float],
) -> None:
    rates = throughput(run, args.duration)
    report.add_table(
        f"Sustained pipeline at {args.rate:g}/s for {args.duration:g} s",
        ["figure", "value"],
        [
            ("creations offered / sent", f"{int(args.rate * args.duration):,} / {run.issued:,}"),
            ("intents created", f"{len(run.created):,} ({run.failed_creations} failed)"),
            ("created per second (steady part)", f"{rates['created_per_second']:,.1f}"),
            ("paid webhooks per second (steady part)", f"{rates['paid_per_second']:,.1f}"),
            ("backlog when creation stopped", f"{rates['backlog_at_end_of_creation']:,.0f}"),
            ("drain after creation stopped, s", f"{drained:,.1f}"),
            (
                "create -> paid webhook p50 / p95 / p99, s",
                " / ".join(f"{percentile(latencies, q):,.2f}" for q in (50, 95, 99)),
            ),
            ("blocks mined", f"{run.blocks:,}"),
        ],
    )
    report.add_table(
        "CPU during the creation phase (cores; the machine has 2)",
        ["process", "cores"],
        [
            *((name, f"{share:.2f}") for name, share in cpu.items()),
            ("whole machine busy", f"{busy * 2:.2f}"),
        ],
    )
    report.add_table("Checks", ["check", "value"], [(k, v) for k, v in checks.items()])
    sustained = rates["paid_per_second"] >= 0.95 * args.rate and checks["lost"] == 0
    exact = (
        checks["lost"] == 0
        and checks["doubled"] == 0
        and checks["ledger_doubled"] == 0
        and checks["ledger_missing"] == 0
        and checks["not_paid_on_chain"] == 0
        and checks["addresses_ledger_differs_from_chain"] == 0
        and checks["merchant_balance_base_units"] == checks["chain_total_base_units"]
    )
    results = {
        "creations": {
            "offered": int(args.rate * args.duration),
            "sent": run.issued,
            "created": len(run.created),
            "failed": run.failed_creations,
        },
        "throughput": rates,
        "checks": checks,
        "cpu_cores": cpu,
        "machine_busy": busy,
        "creation_seconds": creation_seconds,
        "drain_seconds": drained,
        "latency_seconds": {q: percentile(latencies, q) for q in (50, 95, 99)},
        "samples": run.samples,
    }
    goals = {
        "rate_sustained": goal(
            sustained, f"{rates['paid_per_second']:,.1f} paid/s of {args.rate:g}"
        ),
        "none_lost_or_doubled_ledger_equals_chain": goal(
            exact,
            f"lost {checks['lost']}, doubled {checks['doubled']}, ledger != chain at "
            f"{checks['addresses_ledger_differs_from_chain']} addresses",
        ),
    }
    report.finish(results, goals)


def main() -> None:
    cli = parser(__doc__.splitlines()[0], rounds=1)
    cli.add_argument("--rate", type=float, default=100.0, help="payments per second (100)")
    cli.add_argument("--duration", type=float, default=300.0, help="seconds of creation (300)")
    cli.add_argument("--block-time", type=float, default=1.0, help="seconds per block (1)")
    cli.add_argument(
        "--drain", type=float, default=900.0, help="most seconds to wait for the backlog (900)"
    )
    cli.add_argument("--profile", type=float, default=0, metavar="SECONDS", help="py-spy")
    args = cli.parse_args()
    if args.quick:
        args.duration, args.drain = min(args.duration, 20.0), min(args.drain, 60.0)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
