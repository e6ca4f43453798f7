"""Benchmark 3, detection latency: from the block that completes an intent's required
confirmations to the `payment_intent.paid` webhook at the merchant's receiver.

The whole suite runs as processes on a local anvil, with the devnet's settings (3
confirmations, the watcher polling every 0.25 s, as `make run` configures it). For each
of `--payments` intents, one at a time: create it, pay it in one transaction (one block),
wait for the `payment_intent.confirming` webhook (so detection is done, as it long is on
a real chain by the time the last confirmation comes), wait a random part of the poll
interval (so blocks land at every phase of the watcher's loop), then mine the remaining
blocks at once and time from there to the `paid` webhook. The stages in between come from
the services' own rows: when the watcher's transaction confirmed the transfer, when the
gateway's consumer took the `transfer.confirmed` event, and when the webhook delivery was
queued.

Goal (issue 6): p95 under one second.

    uv run python -m bench.detection_latency [--quick] [--payments 200]
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path
from typing import Any

from bench.common import Report, Spread, goal, log, parser, percentile
from bench.payments import PaymentStack, create_intent, payment_stack, random_amount

WORK_DIR = Path(__file__).resolve().parent / "results" / "work" / "detection_latency"
P95_LIMIT = 1.0
WAIT_SECONDS = 30.0


async def _arrival(stack: PaymentStack, event_type: str, intent_id: str) -> float:
    """Monotonic time the webhook arrived; waits up to WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for arrival in stack.receiver.of_type(event_type):
            if arrival.object_id == intent_id:
                return arrival.at
        await asyncio.sleep(0.005)
    raise RuntimeError(f"no {event_type} webhook for {intent_id} within {WAIT_SECONDS:.0f} s")


async def one_payment(
    stack: PaymentStack, api: Any, rng: random.Random, poll: float
) -> dict[str, Any]:
    intent = await create_intent(api, random_amount(rng))
    units = int(intent["amount_base_units"])
    [tx] = await stack.chain.transfer_txs(stack.customer, [(intent["deposit_address"], units)])
    [tx_hash] = await stack.chain.send_transactions([tx])
    await stack.chain.wait_receipts([tx_hash])
    await _arrival(stack, "payment_intent.confirming", intent["id"])
    await asyncio.sleep(rng.uniform(0, poll))
    remaining = int(intent["confirmations_required"]) - 1
    await stack.chain.mine(remaining)
    mined_mono, mined_wall = time.monotonic(), time.time()
    paid = await _arrival(stack, "payment_intent.paid", intent["id"])
    return {
        "intent": intent["id"],
        "tx_hash": tx_hash,
        "latency": paid - mined_mono,
        "mined_at": mined_wall,
        "paid_at": mined_wall + (paid - mined_mono),
    }


async def stages(stack: PaymentStack, payments: list[dict[str, Any]]) -> None:
    """Add each stage's wall time (from the services' rows) to `payments`."""
    watcher = await stack.suite.query(
        "watcher_ethereum",
        "SELECT t.tx_hash, extract(epoch FROM t.confirmed_at) AS confirmed, "
        "o.event_id, extract(epoch FROM o.published_at) AS published "
        "FROM observed_transfers t JOIN outbox o ON o.routing_key = 'transfer.confirmed' "
        "AND o.body->>'subject' = t.network || ':' || t.tx_hash || ':' || t.log_index",
    )
    by_tx = {row["tx_hash"]: row for row in watcher}
    consumed = await stack.suite.query(
        "gateway", "SELECT event_id, extract(epoch FROM processed_at) AS at FROM inbox"
    )
    taken = {row["event_id"]: float(row["at"]) for row in consumed}
    queued = await stack.suite.query(
        "gateway",
        "SELECT e.object_id, extract(epoch FROM d.created_at) AS at FROM webhook_deliveries d "
        "JOIN events e ON e.id = d.event_id WHERE e.type = 'payment_intent.paid'",
    )
    webhook = {row["object_id"]: float(row["at"]) for row in queued}
    for payment in payments:
        row = by_tx.get(payment["tx_hash"])
        if row is None:
            continue
        payment["watcher_confirmed_at"] = float(row["confirmed"])
        payment["relay_published_at"] = float(row["published"]) if row["published"] else None
        payment["gateway_consumed_at"] = taken.get(row["event_id"])
        payment["webhook_queued_at"] = webhook.get(payment["intent"])


async def run(args: Any) -> None:
    report = Report("detection_latency", args, {"payments": args.payments})
    rng = random.Random(3)
    async with payment_stack(
        "detection_latency",
        WORK_DIR,
        events=["payment_intent.confirming", "payment_intent.paid"],
    ) as stack:
        poll = float(stack.setting("watcher-eth", "WATCHER_POLL_INTERVAL_SECONDS") or 1.0)
        report.data["settings"].update(
            {
                "watcher_poll_interval_seconds": poll,
                "confirmations": stack.chain.overlay["networks"]["ethereum"]["confirmations"],
                "webhook_poll_seconds": stack.setting("gateway", "GATEWAY_WEBHOOK_POLL_SECONDS")
                or "0.5 (default; the worker is also woken after each commit)",
            }
        )
        payments = []
        async with stack.suite.api() as api:
            await one_payment(stack, api, rng, poll)  # warm-up, not counted
            for number in range(args.payments):
                if number % 50 == 0:
                    log(f"payment {number + 1}/{args.payments}")
                payments.append(await one_payment(stack, api, rng, poll))
        await stages(stack, payments)
    _summarize(report, payments, args.group)


def _stage_gaps(payments: list[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    marks = [
        ("block mined -> watcher confirms (tx start)", "mined_at", "watcher_confirmed_at"),
        ("-> relay publishes (tx start)", "watcher_confirmed_at", "relay_published_at"),
        ("-> gateway consumes (tx start)", "relay_published_at", "gateway_consumed_at"),
        ("-> webhook queued (tx start)", "gateway_consumed_at", "webhook_queued_at"),
        ("-> webhook received", "webhook_queued_at", "paid_at"),
    ]
    gaps = []
    for label, start, end in marks:
        values = [p[end] - p[start] for p in payments if p.get(start) and p.get(end)]
        gaps.append((label, _percentiles(values)))
    return gaps


def _percentiles(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "n": len(values)}


def _summarize(report: Report, payments: list[dict[str, Any]], group: int) -> None:
    latencies = [p["latency"] for p in payments]
    groups = [latencies[i : i + group] for i in range(0, len(latencies), group)]
    p50 = Spread.of([percentile(g, 50) for g in groups])
    p95 = Spread.of([percentile(g, 95) for g in groups])
    overall = {
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "max": max(latencies),
    }
    report.add_table(
        f"Detection latency over {len(latencies)} payments (groups of {group}: median (min..max))",
        ["figure", "all payments, ms", "per group, ms"],
        [
            ("p50", f"{overall['p50'] * 1000:,.0f}", p50.show(0, 1000)),
            ("p95", f"{overall['p95'] * 1000:,.0f}", p95.show(0, 1000)),
            ("p99", f"{overall['p99'] * 1000:,.0f}", "-"),
            ("max", f"{overall['max'] * 1000:,.0f}", "-"),
        ],
    )
    stage_rows = _stage_gaps(payments)
    report.add_table(
        "Where the time goes (database transaction start times; ms)",
        ["stage", "p50", "p95", "payments"],
        [
            (label, f"{s['p50'] * 1000:,.0f}", f"{s['p95'] * 1000:,.0f}", s["n"])
            for label, s in stage_rows
        ],
    )
    results = {
        "latency": overall,
        "group_p50": p50,
        "group_p95": p95,
        "stages": dict(stage_rows),
        "payments": payments,
    }
    goals = {
        "p95_under_1s": goal(overall["p95"] < P95_LIMIT, f"p95 {overall['p95'] * 1000:,.0f} ms")
    }
    report.finish(results, goals)


def main() -> None:
    cli = parser(__doc__.splitlines()[0], rounds=1)
    cli.add_argument("--payments", type=int, default=200, help="payments timed (200)")
    cli.add_argument("--group", type=int, default=50, help="payments per group for the spread")
    args = cli.parse_args()
    if args.quick:
        args.payments, args.group = 10, 5
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
