"""The BSC side of the devnet: `devnet.py start` brings up both anvils by default (next to
the Tron devnet) and writes every network into one assets.json; each network can be paid
and stopped alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from devnet.devnet import DEVNET_DIR, Rpc, encode_call, free_port
from stablegate_common.core.assets import AssetRegistry
from tests.fixtures.anvil import fresh_address


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEVNET_DIR / "devnet.py"), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


def _balance(state: dict[str, object], token: str, holder: str) -> int:
    tokens = state["tokens"]
    assert isinstance(tokens, dict)
    with Rpc(str(state["rpc_url"])) as rpc:
        call = {"to": tokens[token], "data": encode_call("balanceOf(address)", holder)}
        return int(rpc.call("eth_call", call, "latest"), 16)


def test_start_runs_both_chains_into_one_assets_file(tmp_path: Path) -> None:
    port = free_port()
    common = ["--state-dir", str(tmp_path), "--port", str(port)]
    started = _cli("start", "--block-time", "0", *common)
    try:
        assert started.returncode == 0, started.stderr
        ethereum = json.loads((tmp_path / "ethereum.json").read_text())
        bsc = json.loads((tmp_path / "bsc.json").read_text())
        assert (ethereum["chain_id"], ethereum["rpc_url"]) == (31337, f"http://127.0.0.1:{port}")
        assert (bsc["chain_id"], bsc["rpc_url"]) == (31338, f"http://127.0.0.1:{port + 1}")
        assert (ethereum["decimals"], bsc["decimals"]) == (6, 18)
        assert set(bsc["tokens"].values()).isdisjoint(ethereum["tokens"].values())

        registry = AssetRegistry.from_mapping(json.loads((tmp_path / "assets.json").read_text()))
        assert {"bsc", "ethereum"} <= set(registry.names())  # and Tron, once it has a devnet
        assert registry.network("bsc").chain_id == 31338
        assert registry.asset("bsc", "USDT").decimals == 18
        assert registry.asset("bsc", "USDT").contract == bsc["tokens"]["USDT"]
        assert registry.asset("ethereum", "USDT").decimals == 6
        status = _cli("status", *common)
        assert status.returncode == 0
        assert "bsc devnet running" in status.stdout

        to = fresh_address()
        paid = _cli("pay", "--network", "bsc", "--to", to, "--amount", "12.5", *common)
        assert paid.returncode == 0, paid.stderr
        assert _balance(bsc, "USDT", to) == 12_500_000_000_000_000_000
        assert _balance(ethereum, "USDT", to) == 0

        stopped_bsc = _cli("stop", "--network", "bsc", *common)
        assert stopped_bsc.returncode == 0
        left = AssetRegistry.from_mapping(json.loads((tmp_path / "assets.json").read_text()))
        assert "bsc" not in left.names()
        assert "ethereum" in left.names()
        assert _cli("status", *common).returncode == 3  # not every network is running
        assert _cli("status", "--network", "ethereum", *common).returncode == 0
    finally:
        stopped = _cli("stop", *common)
    assert stopped.returncode == 0
    assert not (tmp_path / "assets.json").exists()
    assert not (tmp_path / "bsc.pid").exists()
    assert not (tmp_path / "ethereum.pid").exists()


def test_one_chain_id_cannot_serve_two_networks(tmp_path: Path) -> None:
    result = _cli("start", "--chain-id", "5", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert "--chain-id needs one --network" in result.stderr
    assert not any(tmp_path.iterdir())
