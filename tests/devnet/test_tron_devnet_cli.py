"""The Tron devnet as `make devnet` runs it: a background process started, queried, paid on
and stopped through devnet/devnet.py, leaving tron.json and a `tron` network in the
shared assets.json next to the EVM networks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from devnet.devnet import DEVNET_DIR, free_port, port_in_use
from stablegate_common.core.assets import MAINNET, AssetRegistry
from tests.fixtures.tron import fresh_tron_account


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEVNET_DIR / "devnet.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_start_status_pay_stop(tmp_path: Path) -> None:
    ethereum = {
        "family": "evm",
        "chain_id": 31337,
        "confirmations": 3,
        "native_symbol": "ETH",
        "assets": {"USDT": {"contract": "0x" + "11" * 20, "decimals": 6}},
    }
    (tmp_path / "assets.json").write_text(json.dumps({"networks": {"ethereum": ethereum}}))
    port = free_port()
    common = ["--network", "tron", "--state-dir", str(tmp_path), "--port", str(port)]
    started = _cli("start", "--block-time", "0.2", "--confirmations", "4", *common)
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        state = json.loads((tmp_path / "tron.json").read_text())
        assert state["http_url"] == f"http://127.0.0.1:{port}/"
        assert len(state["accounts"]) == 10
        assert all(len(a["private_key"]) == 64 for a in state["accounts"])
        assert _cli("status", *common).returncode == 0

        overlay = json.loads((tmp_path / "assets.json").read_text())
        assert set(overlay["networks"]) == {"ethereum", "tron"}
        registry = AssetRegistry.from_mapping(MAINNET).overlay(overlay)
        tron = registry.network("tron")
        assert (tron.family, tron.chain_id, tron.confirmations) == ("tron", None, 4)
        assert registry.asset("tron", "USDT").contract == state["tokens"]["USDT"]
        assert registry.asset("tron", "USDT").decimals == 6
        assert tron.asset_by_contract(state["tokens"]["LOOKALIKE"]) is None

        to = fresh_tron_account().address
        paid = _cli("pay", "--to", to, "--amount", "12.5", "--asset", "USDC", *common)
        assert paid.returncode == 0, paid.stderr
        txid = paid.stdout.strip()
        info = httpx.post(
            state["http_url"] + "wallet/gettransactioninfobyid", json={"value": txid}
        ).json()
        assert int(info["log"][0]["data"], 16) == 12_500_000
    finally:
        stopped = _cli("stop", *common)
    assert stopped.returncode == 0
    assert "stopped" in stopped.stdout
    assert _cli("status", *common).returncode == 3
    assert not port_in_use(port)
    assert not (tmp_path / "tron.json").exists()
    remaining = json.loads((tmp_path / "assets.json").read_text())
    assert set(remaining["networks"]) == {"ethereum"}
