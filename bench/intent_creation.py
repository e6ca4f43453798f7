"""Benchmark 1, intent creation: payment intents created per second and their latency
through the real gateway, beside pgbench running the same two-row insert transaction.

The gateway runs as a process (`stablegate-gateway serve`, as `make run` starts it) with
PostgreSQL, its outbox relay and RabbitMQ. A load generator (httpx, async) posts
`POST /v1/payment_intents` with a fresh `Idempotency-Key` each, closed-loop at each
concurrency in turn (1, 4, 16, 64 requests in flight). Then, in the same round, pgbench
runs the transaction at the heart of a creation, an intent row plus its outbox row (the
script is written from a real intent and event of the run), at the same client counts.
After the rounds, an open-loop phase sends requests at half the gateway's peak rate, on a
fixed schedule (latency counted from the scheduled time, so a stall is not hidden), for
the p99 there.

The API key's rate limit stays on, raised above the load (its statement is part of every
request); the address pool is derived ahead for the whole run (`--pool`), as an operator
sizes it for the expected rate.

Goals (issue 6): the gateway's peak at least 25% of pgbench's; p99 under 50 ms at half
the peak rate.

    uv run python -m bench.intent_creation [--quick] [--rounds 3] [--seconds 10] …
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import DATABASE_URL, Report, Spread, goal, log, parser, percentile
from bench.profile import render, start_recording
from bench.stack import BenchSuite, cpu_seconds, machine_busy, running_suite

WORK_DIR = Path(__file__).resolve().parent / "results" / "work" / "intent_creation"
BODY = {"amount": "25.00", "currency": "USDT", "network": "ethereum", "reference": "bench"}
TARGET_SHARE = 0.25
P99_LIMIT = 0.050


@dataclass
class Phase:
    """One measured phase: what completed, how long each took, what it cost in CPU."""

    seconds: float
    latencies: list[float]
    errors: int
    client_cpu: float  # this process's CPU seconds during the phase
    gateway_cpu: float
    machine_busy: float  # share of all cores busy, whoever used them

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def as_json(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "completed": len(self.latencies),
            "errors": self.errors,
            "p50_ms": percentile(self.latencies, 50) * 1000,
            "p99_ms": percentile(self.latencies, 99) * 1000,
            "client_cpu_share": self.client_cpu / self.seconds,
            "gateway_cpu_share": self.gateway_cpu / self.seconds,
            "machine_busy": self.machine_busy,
        }


class Meter:
    """CPU of this process, the gateway and the whole machine across a phase."""

    def __init__(self, gateway_pids: list[int]) -> None:
        self.pids = gateway_pids
        self.started = time.perf_counter()
        self.client = time.process_time()
        self.gateway = self._gateway_cpu()
        self.busy = machine_busy()

    def _gateway_cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def phase(self, latencies: list[float], errors: int) -> Phase:
        busy, total = machine_busy()
        return Phase(
            seconds=time.perf_counter() - self.started,
            latencies=latencies,
            errors=errors,
            client_cpu=time.process_time() - self.client,
            gateway_cpu=self._gateway_cpu() - self.gateway,
            machine_busy=(busy - self.busy[0]) / max(1.0, total - self.busy[1]),
        )


async def _create(api: Any) -> bool:
    """One creation; False for an error answer or a connection the server dropped (counted
    as errors: uvicorn here resets about one connection in a few thousand under load)."""
    try:
        response = await api.post(
            "/v1/payment_intents", json=BODY, headers={"Idempotency-Key": uuid.uuid4().hex}
        )
    except httpx.TransportError:
        return False
    return bool(response.status_code == 200)


async def closed_loop(suite: BenchSuite, concurrency: int, seconds: float) -> Phase:
    """`concurrency` clients, each sending its next request when the last one returned."""
    latencies: list[float] = []
    errors = 0
    async with suite.api(connections=concurrency) as api:
        await asyncio.gather(*(_create(api) for _ in range(concurrency)))  # open connections
        meter = Meter(suite.pids("gateway"))
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                if await _create(api):
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        await asyncio.gather(*(client() for _ in range(concurrency)))
        return meter.phase(latencies, errors)


async def fixed_rate(suite: BenchSuite, rate: float, seconds: float) -> Phase:
    """Requests on a fixed schedule (open loop); latency from the scheduled time."""
    latencies: list[float] = []
    errors = 0
    count = int(rate * seconds)
    async with suite.api(connections=256) as api:
        await asyncio.gather(*(_create(api) for _ in range(8)))
        meter = Meter(suite.pids("gateway"))
        start = time.perf_counter()

        async def one(scheduled: float) -> None:
            nonlocal errors
            if await _create(api):
                latencies.append(time.perf_counter() - scheduled)
            else:
                errors += 1

        tasks = []
        for i in range(count):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
        return meter.phase(latencies, errors)


# -- pgbench ---------------------------------------------------------------------------------


async def pgbench_tables(suite: BenchSuite) -> str:
    """A schema with copies of the gateway's `payment_intents` and `outbox` (columns,
    indexes, identity, and the foreign keys to its merchants and deposit addresses) for
    pgbench to write to: in the gateway's own tables its outbox relay would publish
    pgbench's rows, and the backlog would load the next gateway phase."""
    schema, gateway = f'"{suite.prefix}pgbench"', f'"{suite.prefix}gateway"'
    await suite.execute(
        f"CREATE SCHEMA {schema}; "
        f"CREATE TABLE {schema}.payment_intents (LIKE {gateway}.payment_intents INCLUDING ALL); "
        f"CREATE TABLE {schema}.outbox (LIKE {gateway}.outbox INCLUDING ALL); "
        f"ALTER TABLE {schema}.payment_intents "
        f"ADD FOREIGN KEY (merchant_id) REFERENCES {gateway}.merchants (id), "
        f"ADD FOREIGN KEY (deposit_address_id) REFERENCES {gateway}.deposit_addresses (id)"
    )
    return f"{suite.prefix}pgbench"


async def write_pgbench_script(suite: BenchSuite, path: Path) -> None:
    """The intent insert and the outbox insert of a real creation, as one transaction.

    Column values are copied from an intent the gateway created in this run, and the
    outbox body from its `intent.created` event, so the rows are the same size; ids are
    fresh per transaction.
    """
    fresh = {
        "id": "'pi_' || replace(gen_random_uuid()::text, '-', '')",
        "created_at": "now()",
        "updated_at": "now()",
        "expires_at": "now() + interval '1 hour'",
    }
    [intent] = await suite.query(
        "gateway",
        "SELECT string_agg(quote_ident(key), ', ' ORDER BY key) AS columns, "
        "string_agg(coalesce(quote_literal(value), 'NULL'), ', ' ORDER BY key) AS vals "
        "FROM payment_intents p, jsonb_each_text(to_jsonb(p)) "
        "WHERE p.id = (SELECT min(id) FROM payment_intents) AND NOT key = ANY($1::text[])",
        list(fresh),
    )
    [event] = await suite.query(
        "gateway",
        "SELECT quote_literal(body::text) AS body FROM outbox "
        "WHERE routing_key = 'intent.created' ORDER BY id LIMIT 1",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "BEGIN;\n"
        f"INSERT INTO payment_intents ({', '.join(fresh)}, {intent['columns']}) "
        f"VALUES ({', '.join(fresh.values())}, {intent['vals']});\n"
        "INSERT INTO outbox (event_id, routing_key, body) VALUES "
        "('evt_' || replace(gen_random_uuid()::text, '-', ''), 'intent.created', "
        f"{event['body']}::jsonb);\n"
        "END;\n"
    )


def pgbench(script: Path, schema: str, clients: int, seconds: float) -> tuple[float, float]:
    """(transactions/s, mean latency in seconds); NaN when pgbench could not run
    (too many connections on a shared server, say)."""
    threads = min(clients, 2)
    command = ["pgbench", "-n", "-f", str(script), "-c", str(clients), "-j", str(threads)]
    command += ["-T", str(max(1, round(seconds))), DATABASE_URL]
    env = {"PGOPTIONS": f"-c search_path={schema}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", result.stdout)
    if result.returncode != 0 or tps is None or latency is None:
        log(f"pgbench -c {clients} failed: {result.stderr.strip()[-300:]}")
        return float("nan"), float("nan")
    return float(tps.group(1)), float(latency.group(1)) / 1000


# -- rounds ----------------------------------------------------------------------------------


async def sweep(
    suite: BenchSuite, script: Path, schema: str, levels: list[int], seconds: float, order: int
) -> dict[str, dict[str, Any]]:
    """One round: the gateway at each concurrency, and pgbench at each client count."""
    row: dict[str, dict[str, Any]] = {}

    async def gateway() -> None:
        for clients in levels:
            row[f"gateway_{clients}"] = (await closed_loop(suite, clients, seconds)).as_json()

    async def baseline() -> None:
        for clients in levels:
            tps, latency = await asyncio.to_thread(pgbench, script, schema, clients, seconds)
            row[f"pgbench_{clients}"] = {"rate": tps, "mean_ms": latency * 1000}

    for step in (gateway, baseline) if order % 2 == 0 else (baseline, gateway):
        await step()
    return row


async def run(args: Any) -> None:
    levels = [int(c) for c in args.concurrency.split(",")]
    settings = {
        "concurrency": levels,
        "seconds_per_level": args.seconds,
        "fixed_rate_seconds": args.fixed_seconds,
        "request": BODY,
        "idempotency_key": "a fresh one per request",
        "address_pool": args.pool,
        "rate_limit": "on, 1,000,000/s per key",
        "webhook_endpoints": 0,
        "gateway_processes": args.gateway_processes,
    }
    report = Report("intent_creation", args, settings)
    env = {
        "gateway": {
            "GATEWAY_RATE_LIMIT_PER_SECOND": "1000000",
            "GATEWAY_RATE_LIMIT_BURST": "1000000",
            "GATEWAY_ADDRESS_POOL_MIN_FREE": str(args.pool),
        }
    }
    if args.gateway_processes > 1:
        # Replicas on one machine share the port (SO_REUSEPORT), as `add_replicas` needs.
        env["gateway"]["HTTP_REUSE_PORT"] = "true"
    log(f"starting the gateway (deriving {args.pool:,} deposit addresses first)")
    async with running_suite(
        "intent_creation",
        services=["gateway"],
        rpc_url="http://127.0.0.1:9",  # the gateway alone needs no chain
        assets_file=None,
        env=env,
        log_dir=WORK_DIR,
    ) as suite:
        if args.gateway_processes > 1:
            log(f"starting {args.gateway_processes - 1} more gateway processes on the same port")
            await asyncio.to_thread(suite.add_replicas, "gateway", args.gateway_processes - 1)
        log("warming up")
        await closed_loop(suite, 4, 2 if args.quick else 5)
        script = WORK_DIR / "pgbench.sql"
        await write_pgbench_script(suite, script)
        schema = await pgbench_tables(suite)
        rounds = []
        for number in range(args.rounds):
            log(f"round {number + 1}/{args.rounds}: concurrency {levels}, gateway and pgbench")
            rounds.append(await sweep(suite, script, schema, levels, args.seconds, number))
        peak = Spread.of([max(r[f"gateway_{c}"]["rate"] for c in levels) for r in rounds])
        target = peak.median / 2
        fixed = []
        for number in range(args.rounds):
            log(f"fixed rate {target:,.0f}/s, round {number + 1}/{args.rounds}")
            fixed.append((await fixed_rate(suite, target, args.fixed_seconds)).as_json())
        if args.profile:
            await profile_gateway(suite, args.results_dir, args.profile)
    _summarize(report, levels, rounds, fixed, target)


async def profile_gateway(suite: BenchSuite, results_dir: Path, seconds: float) -> None:
    """py-spy on the gateway during a closed loop of 16 in flight (not part of the figures)."""
    out = results_dir / "intent_creation-gateway.pyspy.txt"
    log(f"profiling the gateway for {seconds:.0f} s (py-spy) into {out}")
    recorder = start_recording(suite.pid("gateway"), seconds, out)
    await closed_loop(suite, 16, seconds + 1)
    await asyncio.to_thread(recorder.wait)
    print("\n" + render(out, top=25), flush=True)


def _summarize(
    report: Report,
    levels: list[int],
    rounds: list[dict[str, dict[str, Any]]],
    fixed: list[dict[str, Any]],
    target: float,
) -> None:
    def spread(key: str, field: str) -> Spread:
        return Spread.of([r[key][field] for r in rounds])

    rows = [
        (
            clients,
            spread(f"gateway_{clients}", "rate").show(),
            spread(f"gateway_{clients}", "p50_ms").show(1),
            spread(f"gateway_{clients}", "p99_ms").show(1),
            str(sum(r[f"gateway_{clients}"]["errors"] for r in rounds)),
            spread(f"gateway_{clients}", "gateway_cpu_share").show(2),
            spread(f"gateway_{clients}", "machine_busy").show(2),
            spread(f"pgbench_{clients}", "rate").show(),
            spread(f"pgbench_{clients}", "mean_ms").show(2),
        )
        for clients in levels
    ]
    report.add_table(
        f"Intent creation, closed loop; median (min..max) of {len(rounds)} rounds",
        [
            "in flight",
            "gateway /s",
            "p50 ms",
            "p99 ms",
            "errors",
            "gw CPU",
            "busy",
            "pgbench tps",
            "pgbench ms",
        ],
        rows,
    )
    share = Spread.of(
        [
            max(r[f"gateway_{c}"]["rate"] for c in levels)
            / max(r[f"pgbench_{c}"]["rate"] for c in levels)
            for r in rounds
        ]
    )
    fixed_p99 = Spread.of([f["p99_ms"] for f in fixed])
    report.add_table(
        f"Open loop at half the peak ({target:,.0f}/s)",
        ["achieved /s", "p50 ms", "p99 ms", "errors", "gw CPU"],
        [
            (
                Spread.of([f["rate"] for f in fixed]).show(),
                Spread.of([f["p50_ms"] for f in fixed]).show(1),
                fixed_p99.show(1),
                sum(f["errors"] for f in fixed),
                Spread.of([f["gateway_cpu_share"] for f in fixed]).show(2),
            )
        ],
    )
    report.add_table(
        "Goals",
        ["figure", "value", "goal"],
        [
            ("gateway peak / pgbench peak (per round)", share.show(3), f">= {TARGET_SHARE:.2f}"),
            ("p99 at half the peak, ms", fixed_p99.show(1), f"< {P99_LIMIT * 1000:.0f}"),
        ],
    )
    errors = sum(r[k].get("errors", 0) for r in rounds for k in r)
    results = {
        "rounds": rounds,
        "fixed_rate": fixed,
        "fixed_rate_target": target,
        "gateway_share_of_pgbench": share,
        "fixed_rate_p99_ms": fixed_p99,
        "errors": errors,
    }
    goals = {
        "quarter_of_pgbench": goal(share.median >= TARGET_SHARE, f"{share.median:.3f} of pgbench"),
        "p99_at_half_peak": goal(
            fixed_p99.median < P99_LIMIT * 1000, f"p99 {fixed_p99.median:.1f} ms at {target:,.0f}/s"
        ),
    }
    report.finish(results, goals)


def main() -> None:
    cli = parser(__doc__.splitlines()[0], rounds=3)
    cli.add_argument("--concurrency", default="1,4,16,64", help="requests in flight, per level")
    cli.add_argument("--seconds", type=float, default=10.0, help="seconds per level (10)")
    cli.add_argument("--fixed-seconds", type=float, default=15.0, help="open-loop phase (15)")
    cli.add_argument("--pool", type=int, default=60_000, help="deposit addresses derived ahead")
    cli.add_argument(
        "--gateway-processes",
        type=int,
        default=1,
        help="gateway processes sharing the port (replicas on this machine; default 1)",
    )
    cli.add_argument(
        "--profile", type=float, default=0, metavar="SECONDS", help="py-spy the gateway at the end"
    )
    args = cli.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.fixed_seconds, args.pool = 1, 2.0, 3.0, 3_000
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
