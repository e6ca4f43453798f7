"""Run every benchmark, one process each: `uv run python -m bench [--quick]` (`make bench`).

Options after the benchmark names' defaults are passed to each: `--quick` for a smoke
run, `--results-dir DIR` for where the JSON goes. `--only NAME[,NAME]` picks some.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench.common import RESULTS_DIR, log

BENCHMARKS = ("intent_creation", "detection_scan", "detection_latency", "pipeline", "sweep")


def main() -> int:
    cli = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    cli.add_argument("--quick", action="store_true", help="a smoke run of each")
    cli.add_argument("--results-dir", default=str(RESULTS_DIR))
    cli.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated names")
    args = cli.parse_args()
    failed = []
    for name in args.only.split(","):
        if name not in BENCHMARKS:
            cli.error(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        command = [sys.executable, "-m", f"bench.{name}", "--results-dir", args.results_dir]
        if args.quick:
            command.append("--quick")
        log(f"== {name}")
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(name)
    if failed:
        log(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
