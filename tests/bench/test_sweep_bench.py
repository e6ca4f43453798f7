"""The sweep benchmark runs end to end on a few addresses (`--quick`) and writes its JSON.

No timing is asserted: what must hold is that every scenario swept every address it paid
(the benchmark checks the chain itself and fails otherwise), through the transfers each
kind of sweep makes, and that the chain charged what the figures say it did.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_the_sweep_bench_sweeps_every_address_on_tron_and_ethereum(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "bench.sweep",
        "--quick",
        "--addresses",
        "3",
        "--results-dir",
        str(tmp_path),
    ]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=540, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data: dict[str, Any] = json.loads((tmp_path / "sweep.json").read_text())
    assert data["benchmark"] == "sweep"
    assert data["quick"] is True
    assert data["goals"]["all_swept"]["met"] is True
    [round_] = data["results"]["rounds"]
    assert set(round_) == {"tron_delegated", "tron_naive", "ethereum"}
    for scenario in round_.values():
        assert scenario["addresses"] == 3
        assert scenario["swept_base_units"] == scenario["paid_in_base_units"] > 0
        assert set(scenario["seconds"]) == {"plan", "sign", "accept", "broadcast", "confirm"}
    delegated, naive = round_["tron_delegated"], round_["tron_naive"]
    # Delegation: top-up (activation), delegate, sweep, undelegate; naive: top-up, sweep.
    assert delegated["transfers"] == {
        "fee_topup": 3,
        "resource_delegation": 3,
        "resource_undelegation": 3,
        "sweep": 3,
    }
    assert delegated["delegated_addresses"] == 3
    assert naive["transfers"] == {"fee_topup": 3, "sweep": 3}
    # On delegated energy no TRX burns for energy; without, every sweep burns some.
    assert delegated["per_address_max"]["energy_burn_sun"] == 0
    assert naive["per_address_min"]["energy_burn_sun"] > 0
    assert delegated["per_address_min"]["energy"] > 0
    assert data["results"]["trx_naive_over_delegated"] > 1
    ethereum = round_["ethereum"]
    assert ethereum["transfers"] == {"fee_topup": 3, "sweep": 3}
    assert ethereum["per_address_median"]["topup_gas"] == 21_000
    assert ethereum["per_address_min"]["sweep_gas"] > 21_000
