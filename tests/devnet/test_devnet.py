"""The Ethereum devnet: contracts compile, tokens deploy with the right balances, the
assets overlay loads into the registry, and the CLI starts, reports and stops cleanly."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_abi.abi import decode
from eth_utils.abi import function_signature_to_4byte_selector

from devnet.devnet import (
    BUILD_DIR,
    DEVNET_DIR,
    DevnetError,
    Rpc,
    encode_call,
    ensure_compiled,
    free_port,
    start_anvil,
)
from stablegate_common.config import ServiceSettings
from stablegate_common.core.assets import MAINNET, AssetRegistry
from tests.fixtures.anvil import AnvilChain, fresh_address

MINTED = 1_000_000 * 10**6


def test_contracts_compile_to_abi_and_bytecode() -> None:
    ensure_compiled()
    for name in ("TestStablecoin", "LookAlikeToken"):
        artifact = json.loads((BUILD_DIR / f"{name}.json").read_text())
        assert artifact["bytecode"].startswith("0x60")
        functions = {item.get("name") for item in artifact["abi"]}
        assert {"name", "symbol", "decimals", "balanceOf"} <= functions
    manifest = json.loads((BUILD_DIR / "manifest.json").read_text())
    assert manifest["solcVersion"] == "0.8.37"


def test_compile_is_cached_by_source_hash() -> None:
    ensure_compiled()
    again = subprocess.run(
        ["node", str(DEVNET_DIR / "compile.mjs")], capture_output=True, text=True, check=True
    )
    assert "up to date" in again.stdout


async def _read_string(anvil: AnvilChain, token: str, function: str) -> str:
    data = "0x" + function_signature_to_4byte_selector(f"{function}()").hex()
    raw = await anvil.rpc("eth_call", {"to": token, "data": data}, "latest")
    value: str = decode(["string"], bytes.fromhex(raw[2:]))[0]
    return value


async def test_tokens_are_deployed_with_metadata(anvil: AnvilChain) -> None:
    assert await _read_string(anvil, anvil.usdt, "symbol") == "USDT"
    assert await _read_string(anvil, anvil.usdc, "symbol") == "USDC"
    assert await _read_string(anvil, anvil.usdc, "name") == "USD Coin"
    # The look-alike copies the real token's face; only its address differs.
    assert await _read_string(anvil, anvil.lookalike, "name") == "Tether USD"
    assert await _read_string(anvil, anvil.lookalike, "symbol") == "USDT"
    assert len({anvil.usdt, anvil.usdc, anvil.lookalike}) == 3


async def test_first_five_accounts_hold_a_million_of_each(anvil: AnvilChain) -> None:
    for token in (anvil.usdt, anvil.usdc):
        # accounts 1 and 9 send in other tests; 0 and 2-4 are never spent from.
        for account in (anvil.accounts[0], *anvil.accounts[2:5]):
            assert await anvil.balance_of(token, account) == MINTED
        assert await anvil.balance_of(token, anvil.accounts[5]) == 0
    assert await anvil.balance_of(anvil.lookalike, anvil.accounts[0]) == 0


async def test_transfer_moves_exact_base_units(anvil: AnvilChain) -> None:
    to = fresh_address()
    before = await anvil.balance_of(anvil.usdc, anvil.accounts[1])
    tx_hash = await anvil.transfer(anvil.usdc, to, 12_345_678)
    assert (await anvil.receipt(tx_hash))["status"] == "0x1"
    assert await anvil.balance_of(anvil.usdc, to) == 12_345_678
    assert await anvil.balance_of(anvil.usdc, anvil.accounts[1]) == before - 12_345_678


async def test_assets_overlay_loads_into_the_registry(anvil: AnvilChain) -> None:
    registry = AssetRegistry.from_mapping(MAINNET).overlay(anvil.assets_overlay)
    ethereum = registry.network("ethereum")
    assert (ethereum.chain_id, ethereum.confirmations, ethereum.native_symbol) == (31337, 3, "ETH")
    assert registry.asset("ethereum", "USDT").contract == anvil.usdt
    assert registry.asset("ethereum", "USDC").decimals == 6
    assert ethereum.asset_by_contract(anvil.lookalike) is None
    assert registry.network("bsc").chain_id == 56  # other networks keep their mainnet entry

    from_file = ServiceSettings(assets_file=anvil.assets_file).asset_registry()
    assert from_file.asset("ethereum", "USDC").contract == anvil.usdc


def test_start_anvil_refuses_a_port_in_use(anvil: AnvilChain) -> None:
    with pytest.raises(DevnetError, match="already in use"):
        start_anvil(anvil.process.port, 31337)


def test_start_anvil_surfaces_its_log_when_it_dies(tmp_path: Path) -> None:
    with pytest.raises(DevnetError, match=r"(?s)exited at start-up.*no-such-flag"):
        start_anvil(free_port(), 31337, log_path=tmp_path / "a.log", extra_args=["--no-such-flag"])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEVNET_DIR / "devnet.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_start_status_pay_stop(tmp_path: Path) -> None:
    common = ["--state-dir", str(tmp_path), "--port", str(free_port()), "--confirmations", "5"]
    started = _cli("start", "--block-time", "0", *common)
    try:
        assert started.returncode == 0, started.stderr
        state = json.loads((tmp_path / "ethereum.json").read_text())
        again = _cli("start", *common)
        assert again.returncode == 0
        assert "already running" in again.stdout
        assert _cli("status", *common).returncode == 0

        overlay = json.loads((tmp_path / "assets.json").read_text())
        registry = AssetRegistry.from_mapping(overlay)
        assert registry.network("ethereum").confirmations == 5
        assert registry.asset("ethereum", "USDT").contract == state["tokens"]["USDT"]

        to = fresh_address()
        paid = _cli("pay", "--to", to, "--amount", "12.5", "--asset", "USDC", *common)
        assert paid.returncode == 0, paid.stderr
        with Rpc(state["rpc_url"]) as rpc:
            call = {"to": state["tokens"]["USDC"], "data": encode_call("balanceOf(address)", to)}
            assert int(rpc.call("eth_call", call, "latest"), 16) == 12_500_000
        too_precise = _cli("pay", "--to", to, "--amount", "0.0000001", *common)
        assert too_precise.returncode == 1
    finally:
        stopped = _cli("stop", *common)
    assert stopped.returncode == 0
    assert "stopped" in stopped.stdout
    assert _cli("status", *common).returncode == 3
    assert not (tmp_path / "assets.json").exists()
    assert not (tmp_path / "ethereum.pid").exists()


async def test_a_revert_or_a_reorg_leaves_the_chain_clock_on_the_wall_clock(
    anvil: AnvilChain,
) -> None:
    """anvil's evm_revert rewinds its clock to the snapshot's block; the fixture puts it
    back, or every isolated test would leave later blocks stamped in the past."""
    snapshot_id = await anvil.snapshot()
    await asyncio.sleep(3)
    await anvil.mine(1)
    await anvil.revert(snapshot_id)
    await anvil.mine(1)
    block = await anvil.rpc("eth_getBlockByNumber", "latest", False)
    assert int(block["timestamp"], 16) >= int(time.time()) - 1
    await anvil.mine(2)
    await asyncio.sleep(3)
    await anvil.reorg(2)  # anvil_reorg rewinds it as well
    await anvil.mine(1)
    block = await anvil.rpc("eth_getBlockByNumber", "latest", False)
    assert int(block["timestamp"], 16) >= int(time.time()) - 1
