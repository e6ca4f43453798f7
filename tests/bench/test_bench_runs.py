"""Every benchmark runs end to end in its smoke mode (`--quick`) and writes its JSON.

Timings are not asserted (a shared machine makes them noise); what must hold is that each
benchmark completes, measured its subject and its baseline, and that the checks it makes
on the way (every transfer found, no payment lost) passed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def run_quick(name: str, results: Path, *extra: str) -> dict[str, Any]:
    command = [sys.executable, "-m", f"bench.{name}", "--quick", "--results-dir", str(results)]
    done = subprocess.run(
        [*command, *extra], cwd=ROOT, capture_output=True, text=True, timeout=840, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data: dict[str, Any] = json.loads((results / f"{name}.json").read_text())
    assert data["benchmark"] == name
    assert data["quick"] is True
    assert "goals" in data
    assert data["machine_before"]["cpus"] >= 1
    return data


def test_intent_creation_runs(tmp_path: Path) -> None:
    data = run_quick("intent_creation", tmp_path, "--concurrency", "1,4")
    [round_] = data["results"]["rounds"]
    assert round_["gateway_4"]["completed"] > 0
    assert round_["pgbench_4"]["rate"] > 0
    assert data["results"]["fixed_rate"][0]["completed"] > 0


def test_detection_scan_runs(tmp_path: Path) -> None:
    data = run_quick("detection_scan", tmp_path)
    [round_] = data["results"]["rounds"]
    assert set(round_) == {"raw_httpx", "raw_aiohttp", "engine_small", "engine_large"}
    assert data["settings"]["hits"] > 0


def test_detection_latency_runs(tmp_path: Path) -> None:
    data = run_quick("detection_latency", tmp_path)
    assert len(data["results"]["payments"]) == 10
    assert data["settings"]["watcher_poll_interval_seconds"] > 0


def test_pipeline_runs(tmp_path: Path) -> None:
    data = run_quick("pipeline", tmp_path, "--rate", "5", "--duration", "10")
    checks = data["results"]["checks"]
    assert checks["intents"] > 0
    assert checks["lost"] == 0
    assert checks["doubled"] == 0
    assert checks["addresses_ledger_differs_from_chain"] == 0


def test_the_runner_refuses_an_unknown_benchmark() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "nonsense"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown benchmark" in done.stderr
