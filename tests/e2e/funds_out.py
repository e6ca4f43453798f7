"""What the funds-out e2e modules share: a seed of their own and the gateway settings
that configure funds out on the three devnets, funding the fee wallets, the ops API
client, the signer's policy files and the operator's `stablegate-signer sign` round, and a
miner for the anvils."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from bip_utils import Bip39MnemonicGenerator, Bip39WordsNum
from eth_utils.address import to_checksum_address

from devnet.tron import TronDevnet
from stablegate_signer.keys import Seed
from tests.e2e.conftest import RunningSuite
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.tron import fresh_tron_account

SIGNER = str(Path(sys.executable).with_name("stablegate-signer"))
EVM_ACCOUNT, TRON_ACCOUNT = "m/44'/60'/0'", "m/44'/195'/0'"
EVM_FEE_PATH, TRON_FEE_PATH = f"{EVM_ACCOUNT}/1/0", f"{TRON_ACCOUNT}/1/0"
TRX = 1_000_000
# Enough staked energy for every Tron sweep of the round (about 17,000 TRX of stake per
# address at the devnet's energy weight), so each one is paid by delegation.
TRON_STAKE_SUN = 500_000 * TRX
TRON_FEE_WALLET_SUN = 600_000 * TRX
EVM_FEE_WALLET_WEI = 10**18
NETWORKS = ("ethereum", "bsc", "tron")


@dataclass(frozen=True)
class Keys:
    """The module's seed and what the gateway and the signer need of it."""

    mnemonic: str
    seed: Seed
    evm_fee: str
    tron_fee: str
    evm_treasury: str
    tron_treasury: str
    ops_token: str

    def treasury(self, network: str) -> str:
        return self.tron_treasury if network == "tron" else self.evm_treasury

    def fee_wallet(self, network: str) -> str:
        return self.tron_fee if network == "tron" else self.evm_fee


def new_keys() -> Keys:
    """A fresh random 24-word seed, its fee wallets, fresh treasuries, an ops token."""
    mnemonic = str(Bip39MnemonicGenerator().FromWordsNumber(Bip39WordsNum.WORDS_NUM_24))
    seed = Seed(mnemonic)
    return Keys(
        mnemonic,
        seed,
        seed.address(EVM_FEE_PATH, "ethereum"),
        seed.address(TRON_FEE_PATH, "tron"),
        to_checksum_address(fresh_address()),
        fresh_tron_account().address,
        secrets.token_urlsafe(32),
    )


def gateway_env(
    keys: Keys, anvil: AnvilChain, anvil_bsc: AnvilChain, tron: TronDevnet
) -> dict[str, str]:
    """Funds out configured on all three networks; the planner and the broadcaster read
    the devnets directly (the watchers and the reconciler go through hostile providers)."""
    env = {
        "GATEWAY_EVM_XPUB": keys.seed.account_xpub(EVM_ACCOUNT),
        "GATEWAY_TRON_XPUB": keys.seed.account_xpub(TRON_ACCOUNT),
        "GATEWAY_OPS_TOKEN": keys.ops_token,
        "GATEWAY_RPC_URL_ETHEREUM": anvil.rpc_url,
        "GATEWAY_RPC_URL_BSC": anvil_bsc.rpc_url,
        "GATEWAY_TRON_API_URL": tron.url,
        "GATEWAY_SWEEP_MIN_AMOUNT": "1",
        "GATEWAY_SWEEP_TRON_DELEGATION": "auto",
        "GATEWAY_OUTGOING_REBROADCAST_SECONDS": "3",
    }
    for network in NETWORKS:
        env[f"GATEWAY_TREASURY_ADDRESS_{network.upper()}"] = keys.treasury(network)
        env[f"GATEWAY_FEE_WALLET_ADDRESS_{network.upper()}"] = keys.fee_wallet(network)
    return env


def ops(suite: RunningSuite, keys: Keys) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=suite.gateway,
        headers={"Authorization": f"Bearer {keys.ops_token}"},
        timeout=30,
    )


def evm_policy(keys: Keys, network: str, chain: AnvilChain, native: str) -> str:
    return f"""
[networks.{network}]
chain_id = {chain.chain_id}
path_prefixes = ["{EVM_ACCOUNT}"]
max_fee_per_transaction = "0.01"
max_fee_per_request = "1"

[networks.{network}.assets]
{native} = {{ decimals = 18 }}
USDT = {{ contract = "{to_checksum_address(chain.usdt)}", decimals = {chain.decimals} }}
USDC = {{ contract = "{to_checksum_address(chain.usdc)}", decimals = {chain.decimals} }}

[networks.{network}.purposes.sweep]
destinations = ["{keys.evm_treasury}"]

[networks.{network}.purposes.fee_topup]
destinations = "own"
limits.{native} = {{ per_transaction = "0.01" }}

[networks.{network}.purposes.refund]
destinations = "any"
limits.USDT = {{ per_transaction = "1000", per_request = "5000" }}

[networks.{network}.purposes.payout]
destinations = "any"
limits.USDT = {{ per_transaction = "1000", per_request = "5000" }}
"""


def tron_policy(keys: Keys, tron: TronDevnet) -> str:
    return f"""
[networks.tron]
path_prefixes = ["{TRON_ACCOUNT}"]
max_fee_per_transaction = "100"
max_fee_per_request = "10000"

[networks.tron.assets]
TRX = {{ decimals = 6 }}
USDT = {{ contract = "{tron.tokens["USDT"]}", decimals = 6 }}
USDC = {{ contract = "{tron.tokens["USDC"]}", decimals = 6 }}

[networks.tron.purposes.sweep]
destinations = ["{keys.tron_treasury}"]

[networks.tron.purposes.fee_topup]
destinations = "own"
limits.TRX = {{ per_transaction = "30" }}

[networks.tron.purposes.resource_delegation]
destinations = "own"

[networks.tron.purposes.resource_undelegation]
destinations = "own"

[networks.tron.purposes.refund]
destinations = "any"
limits.USDT = {{ per_transaction = "1000", per_request = "5000" }}

[networks.tron.purposes.payout]
destinations = "any"
limits.USDT = {{ per_transaction = "1000", per_request = "5000" }}
"""


def sign(workdir: Path, keys: Keys, policy: str, name: str, request: bytes) -> bytes:
    """The operator's round: `stablegate-signer sign REQUEST -o SIGNED --policy … --seed-file
    … --yes`, with the seed and policy files owner-only as the signer demands."""
    workdir.mkdir(parents=True, exist_ok=True)
    seed_file, policy_file = workdir / "seed.txt", workdir / f"{name}.policy.toml"
    if not seed_file.exists():
        seed_file.touch(0o600)
        seed_file.write_text(keys.mnemonic + "\n")
    policy_file.write_text(policy)
    policy_file.chmod(0o600)
    (workdir / f"{name}.json").write_bytes(request)
    result = subprocess.run(
        [
            SIGNER,
            "sign",
            f"{name}.json",
            "-o",
            f"{name}.signed.json",
            "--policy",
            policy_file.name,
            "--seed-file",
            seed_file.name,
            "--yes",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return (workdir / f"{name}.signed.json").read_bytes()


@contextlib.asynccontextmanager
async def mining(*chains: AnvilChain, every: float = 0.3) -> AsyncIterator[None]:
    """A block on each anvil every `every` seconds (the Tron devnet has its own timer), so
    top-ups and sweeps gather their confirmations."""

    async def run() -> None:
        while True:
            for chain in chains:
                await chain.mine()
            await asyncio.sleep(every)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def evm_native(chain: AnvilChain, address: str) -> int:
    return int(await chain.rpc("eth_getBalance", address, "latest"), 16)


async def batch_detail(client: httpx.AsyncClient, batch_id: str) -> dict[str, Any]:
    response = await client.get(f"/ops/v1/outgoing/batches/{batch_id}")
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


async def fund_fee_wallets(
    keys: Keys, anvil: AnvilChain, anvil_bsc: AnvilChain, tron: TronDevnet
) -> None:
    """Gas from a dev account on each anvil; on Tron TRX from the faucet, most of it
    staked for energy (a FreezeBalanceV2 signed by the fee wallet's key)."""
    for chain in (anvil, anvil_bsc):
        await chain.send(
            {"from": chain.accounts[5], "to": keys.evm_fee, "value": hex(EVM_FEE_WALLET_WEI)}
        )
    tron.fund(keys.tron_fee, trx_sun=TRON_FEE_WALLET_SUN)
    tron.stake(keys.seed.private_key(TRON_FEE_PATH).hex(), TRON_STAKE_SUN, "ENERGY")
