"""What every benchmark shares: command-line options, statistics over rounds, the state of
the machine, and the two outputs (a table on stdout, a JSON file under bench/results/).

Figures are medians over rounds with their spread (min..max): the machine is shared and
small, so one round says little. Every benchmark measures its baseline in the same run,
interleaved with the subject, so the ratio between them holds when the load changes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def parser(description: str, *, rounds: int) -> argparse.ArgumentParser:
    """The options every benchmark takes; each adds its own."""
    cli = argparse.ArgumentParser(description=description)
    cli.add_argument(
        "--quick", action="store_true", help="a smoke run: small sizes, one round, seconds"
    )
    cli.add_argument("--rounds", type=int, default=rounds, help=f"rounds (default {rounds})")
    cli.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON result goes"
    )
    return cli


# -- statistics ----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Spread:
    """One figure over several rounds: the median and the range it moved in."""

    median: float
    low: float
    high: float
    rounds: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        finite = [v for v in values if not math.isnan(v)]
        if not finite:
            return cls(math.nan, math.nan, math.nan, 0)
        return cls(statistics.median(finite), min(finite), max(finite), len(finite))

    def show(self, digits: int = 0, scale: float = 1.0) -> str:
        """`median (low..high)`, scaled (e.g. 1000 for seconds shown as ms)."""
        if self.rounds == 0:
            return "-"
        m, lo, hi = (v * scale for v in (self.median, self.low, self.high))
        if self.rounds == 1:
            return f"{m:,.{digits}f}"
        return f"{m:,.{digits}f} ({lo:,.{digits}f}..{hi:,.{digits}f})"

    def as_json(self) -> dict[str, float | int]:
        return {"median": self.median, "min": self.low, "max": self.high, "rounds": self.rounds}


# -- the machine ---------------------------------------------------------------------------


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def machine() -> dict[str, Any]:
    """What the figures depend on: cores, load, Python, PostgreSQL."""
    return {
        "cpus": os.cpu_count(),
        "load_average": list(load_average()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": _postgres_version(),
    }


def _postgres_version() -> str | None:
    try:
        result = subprocess.run(
            ["psql", DATABASE_URL, "-Atc", "SHOW server_version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


# -- output --------------------------------------------------------------------------------


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([title, line(cells[0]), rule, *(line(r) for r in cells[1:])])


class Report:
    """Collects one benchmark's tables and figures; `finish()` prints and writes them."""

    def __init__(self, name: str, args: argparse.Namespace, settings: dict[str, Any]) -> None:
        self.name = name
        self.results_dir: Path = args.results_dir
        self.started = time.monotonic()
        self.data: dict[str, Any] = {
            "benchmark": name,
            "command": " ".join(["uv run python -m", f"bench.{name}", *sys.argv[1:]]),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": bool(args.quick),
            "rounds": args.rounds,
            "settings": settings,
            "machine_before": machine(),
        }
        self.tables: list[str] = []

    def add_table(
        self, title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None:
        text = table(title, headers, rows)
        self.tables.append(text)
        print("\n" + text, flush=True)

    def finish(self, results: dict[str, Any], goals: dict[str, Any]) -> Path:
        self.data["results"] = results
        self.data["goals"] = goals
        self.data["load_average_after"] = list(load_average())
        self.data["seconds"] = round(time.monotonic() - self.started, 1)
        self.results_dir.mkdir(parents=True, exist_ok=True)
        path = self.results_dir / f"{self.name}.json"
        path.write_text(json.dumps(self.data, indent=2, default=_json_default) + "\n")
        verdicts = [
            f"  {k}: {'met' if v['met'] else 'MISSED'} ({v['detail']})" for k, v in goals.items()
        ]
        load = self.data["machine_before"]["load_average"][0], self.data["load_average_after"][0]
        print(
            "\ngoals:\n" + "\n".join(verdicts) + f"\nload average {load[0]:.2f} -> {load[1]:.2f}; "
            f"{self.data['seconds']} s; written to {path}",
            flush=True,
        )
        return path


def goal(met: bool, detail: str) -> dict[str, Any]:
    return {"met": bool(met), "detail": detail}


def log(message: str) -> None:
    """Progress on stderr, so stdout stays the tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _json_default(value: object) -> object:
    if isinstance(value, Spread):
        return value.as_json()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
