"""Sweeping deposit addresses, end to end through the gateway's own code, on the devnets.

`uv run python -m bench.sweep [--addresses 1000] [--quick]`

Per scenario, on a fresh gateway schema whose xpubs come from a random mnemonic: N
intents are created (each allocates one of the gateway's derived deposit addresses),
their addresses are paid USDT on chain and the intents closed; then sweep rounds run
until nothing is left to sweep: `plan_sweeps` (the nodes read, the plan stored), the
signing request issued and signed by the real signer (`stablegate_signer.signing`, the
signer's own policy file), the signed response verified and accepted by the gateway, the
Broadcaster's rounds, the chain mined and every mined transaction confirmed through the
gateway's `chain.tx.*` consumer handler with the facts read back from the node.

Scenarios, side by side in one run:
- `tron_delegated`: GATEWAY_SWEEP_TRON_DELEGATION=auto, the fee wallet staked for energy:
  it delegates energy to each address, the address sweeps on it, the energy is taken back;
- `tron_naive`: GATEWAY_SWEEP_TRON_DELEGATION=never: one TRX top-up per address, the
  sweep burns TRX for its energy. The ratio of TRX burned per address is the figure;
- `ethereum` (anvil): a gas top-up then the sweep per address; gas per address.

The Tron devnet (devnet/tron) charges energy and bandwidth by java-tron's rules (burn
prices, free bandwidth, account creation fees, Stake 2.0 energy). Costs per address are
what the chain charged (`fee` of gettransactioninfobyid / gasUsed x price of the
receipts), medians over the addresses. Phase times are wall seconds for the whole sweep
(all batches: the signer takes at most 1,000 transfers per request), and the CPU of the
gateway and signer code per address (the main thread's CPU time: the in-process Tron
devnet runs on a thread of its own and anvil in its own process, neither counted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from bip_utils import Bip39MnemonicGenerator, Bip39WordsNum
from eth_utils.address import to_checksum_address
from pydantic import SecretStr
from sqlalchemy import update

from bench.chain import SPEC, BenchChain, bench_chain
from bench.common import (
    DATABASE_URL,
    RABBITMQ_URL,
    Report,
    Spread,
    goal,
    log,
    parser,
)
from devnet.devnet import free_port
from devnet.tron import DevnetConfig, TronDevnet, start_tron_devnet
from stablegate_common.config import BusSettings, DatabaseSettings
from stablegate_common.db import Database
from stablegate_common.events import make_event
from stablegate_common.events.contracts import ChainTxConfirmed
from stablegate_common.migrations import upgrade
from stablegate_gateway.cli import MIGRATIONS
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.intents import service as intents
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.intents.schemas import CreatePaymentIntent
from stablegate_gateway.merchants.service import create_merchant
from stablegate_gateway.outgoing import repository
from stablegate_gateway.outgoing.broadcaster import Broadcaster, build_senders
from stablegate_gateway.outgoing.consumers import chain_tx_handler
from stablegate_gateway.outgoing.models import OutgoingTransfer
from stablegate_gateway.outgoing.states import OutgoingState
from stablegate_gateway.outgoing.sweep_config import SweepSettings
from stablegate_gateway.outgoing.sweeps import SweepTargets, plan_sweeps
from stablegate_gateway.settings import GatewayConfig, GatewaySettings
from stablegate_signer import documents
from stablegate_signer.keys import Seed
from stablegate_signer.policy import Policy
from stablegate_signer.signing import Signer

NAME = "sweep"
USDT = 10**6
TRX = 10**6
PHASES = ("plan", "sign", "accept", "broadcast", "confirm")
# What the phases are (the table's first column).
PHASE_TITLES = {
    "plan": "plan (nodes read, plan stored)",
    "sign": "sign (request issued, signer signs)",
    "accept": "verify + accept (gateway)",
    "broadcast": "broadcast (Broadcaster rounds)",
    "confirm": "mine + confirm (chain.tx consumer)",
}
# Stake per address the delegating fee wallet gets: a USDT sweep's energy x the 1.25
# margin is ≈ 8,600 TRX of stake at the devnet's (mainnet-sized) weights, 17,000 for the
# first transfer to a new treasury; 20,000 covers every address of a whole sweep.
STAKE_PER_ADDRESS_TRX = 20_000
TERMINAL = {
    OutgoingState.CONFIRMED.value,
    OutgoingState.FAILED.value,
    OutgoingState.CANCELED.value,
    "expired",
    "superseded",
    "replaced",
}


class BenchError(Exception):
    """The sweep did not complete as it must (a transfer failed, funds were left)."""


# -- measurement ----------------------------------------------------------------------------


@dataclass
class Phases:
    """Wall and main-thread CPU seconds per phase, summed over a scenario's batches."""

    wall: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.wall[phase] += time.perf_counter() - wall
            self.cpu[phase] += time.thread_time() - cpu


@dataclass
class Outcome:
    scenario: str
    addresses: int
    phases: Phases
    batches: int
    transfers: dict[str, int]  # per purpose
    per_address: dict[str, list[int]]  # cost figures, one value per swept address
    swept: int  # base units at the treasury
    paid_in: int
    delegated_addresses: int = 0
    staked_sun: int = 0


# -- the gateway in process -----------------------------------------------------------------


def _settings(
    schema: str, assets_file: Path, sweeps: SweepSettings, **gateway: Any
) -> GatewaySettings:
    config: dict[str, Any] = {
        "public_base_url": "https://pay.bench.test",
        "api_key_pepper": secrets.token_hex(16),
        "jwt_secret": secrets.token_hex(24),
        "address_pool_min_free": 50,
        "address_pool_batch": 200,
        **gateway,
    }
    settings = GatewaySettings(
        environment="test",
        assets_file=assets_file,
        database=DatabaseSettings(url=SecretStr(DATABASE_URL), DATABASE_SCHEMA=schema, pool_size=4),
        bus=BusSettings(url=SecretStr(RABBITMQ_URL), exchange=f"stablegate.{schema}"),
        gateway=GatewayConfig(**config),
    )
    return settings.model_copy(update={"sweeps": sweeps})


@asynccontextmanager
async def gateway(
    name: str, assets_file: Path, sweeps: SweepSettings, **xpubs: Any
) -> AsyncIterator[GatewayContext]:
    """A context on a freshly migrated schema of its own, dropped on the way out."""
    schema = f"bench_sweep_{name}_{secrets.token_hex(3)}"
    settings = _settings(schema, assets_file, sweeps, **xpubs)
    await asyncio.to_thread(upgrade, MIGRATIONS, settings.database)
    db = Database(settings.database)
    try:
        yield GatewayContext(settings, settings.asset_registry(), db)
    finally:
        await db.dispose()
        conn = await asyncpg.connect(DATABASE_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def deposit_addresses(ctx: GatewayContext, network: str, count: int) -> list[str]:
    """`count` intents of a merchant of the bench, each on a deposit address of its own,
    then closed (paid), so the sweep may take their addresses."""
    async with ctx.db.transaction() as session:
        merchant = (await create_merchant(session, ctx, name="Sweep bench", mode="test")).merchant
    made: list[PaymentIntent] = []
    params = CreatePaymentIntent(amount="25.00", currency="USDT", network=network)
    for _ in range(count):
        async with ctx.db.transaction() as session:
            made.append(await intents.create_intent(session, ctx, merchant.id, params))
    async with ctx.db.transaction() as session:
        await session.execute(
            update(PaymentIntent)
            .where(PaymentIntent.id.in_([i.id for i in made]))
            .values(status="paid")
        )
    return [i.deposit_address for i in made]


def amounts(count: int) -> list[int]:
    """What each address was paid: 20 to 519 USDT, all above the sweep threshold (10)."""
    return [(20 + (i * 37) % 500) * USDT for i in range(count)]


def signer(directory: Path, policy: str, seed: Seed) -> Signer:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "policy.toml"
    path.write_text(policy, encoding="utf-8")
    path.chmod(0o600)
    return Signer(seed, Policy.load(path))


async def transfers_of(ctx: GatewayContext, batch_id: str) -> list[OutgoingTransfer]:
    async with ctx.db.sessions() as session:
        return await repository.batch_transfers(session, batch_id)


# Reads the node's facts about a list of transfers, returns ChainTxConfirmed payloads.
Facts = Callable[[list[OutgoingTransfer]], Awaitable[list[ChainTxConfirmed]]]


async def sweep_until_done(
    ctx: GatewayContext,
    network: str,
    targets: SweepTargets,
    sign: Signer,
    *,
    mine: Callable[[], Awaitable[None]],
    facts: Facts,
    phases: Phases,
) -> list[str]:
    """Sweep rounds until a plan finds nothing; the batch ids."""
    handler = chain_tx_handler()
    senders = build_senders({network: ctx.settings.sweeps.node_url(network)})
    broadcaster = Broadcaster(ctx.db, senders, rebroadcast_seconds=3600)
    batches: list[str] = []
    try:
        while True:
            with phases.timed("plan"):
                async with ctx.db.transaction() as session:
                    planned = await plan_sweeps(
                        session, ctx, network, "bench", targets={network: targets}
                    )
            if not planned:
                return batches
            (batch,) = planned
            batches.append(batch.id)
            log(f"{network}: batch {len(batches)}, {batch.plan_summary['addresses']} addresses")
            with phases.timed("sign"):
                async with ctx.db.transaction() as session:
                    request = await repository.issue_request(session, batch.id, by="bench")
                signed = documents.dump(sign.sign(documents.load_request(request))).encode()
            with phases.timed("accept"):
                async with ctx.db.transaction() as session:
                    await repository.accept_signed(session, signed, by="bench")
            while True:
                with phases.timed("broadcast"):
                    sent = await broadcaster.round()
                    assert sent is not None  # the lock is this schema's alone
                with phases.timed("confirm"):
                    await mine()
                    transfers = await transfers_of(ctx, batch.id)
                    waiting = [t for t in transfers if t.state == OutgoingState.BROADCAST.value]
                    for payload in await facts(waiting):
                        event = make_event(
                            payload, producer="bench", subject=payload.tx_hash, sequence=1
                        )
                        async with ctx.db.transaction() as session:
                            await handler(session, event)
                    transfers = await transfers_of(ctx, batch.id)
                failed = [t for t in transfers if t.state != "confirmed" and t.state in TERMINAL]
                if failed:
                    t = failed[0]
                    raise BenchError(
                        f"{network}: {len(failed)} transfers ended {t.state}, e.g. {t.purpose} "
                        f"{t.tx_hash}: {t.failure_reason} {t.last_broadcast_error}"
                    )
                if all(t.state == "confirmed" for t in transfers):
                    break
                if not sent and not waiting:
                    stuck = next(t for t in transfers if t.state != "confirmed")
                    raise BenchError(
                        f"{network}: nothing sent and {stuck.purpose} {stuck.id} is "
                        f"{stuck.state} ({stuck.last_broadcast_error})"
                    )
    finally:
        await broadcaster.close()


async def all_transfers(ctx: GatewayContext, batch_ids: list[str]) -> list[OutgoingTransfer]:
    found: list[OutgoingTransfer] = []
    for batch_id in batch_ids:
        found.extend(await transfers_of(ctx, batch_id))
    return found


def deposit_of(t: OutgoingTransfer) -> str:
    """The deposit address a transfer is for (the source of a sweep, the receiver of a
    top-up or a delegation)."""
    if t.purpose == "sweep":
        return t.source_address
    return t.destination_address or ""


def _count(transfers: list[OutgoingTransfer]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for t in transfers:
        counted[t.purpose] = counted.get(t.purpose, 0) + 1
    return dict(sorted(counted.items()))


# -- Tron -----------------------------------------------------------------------------------


def tron_policy(prefix: str, usdt: str, treasury: str) -> str:
    return f"""
[networks.tron]
path_prefixes = ["{prefix}"]
max_fee_per_transaction = "100"
max_fee_per_request = "10000000"

[networks.tron.assets]
TRX = {{ decimals = 6 }}
USDT = {{ contract = "{usdt}", decimals = 6 }}

[networks.tron.purposes.sweep]
destinations = ["{treasury}"]

[networks.tron.purposes.fee_topup]
destinations = "own"

[networks.tron.purposes.resource_delegation]
destinations = "own"

[networks.tron.purposes.resource_undelegation]
destinations = "own"
"""


@dataclass
class TronInfo:
    """What the devnet charged a transaction (gettransactioninfobyid), in sun."""

    fee: int
    energy_fee: int
    net_fee: int
    energy: int
    bandwidth: int


async def run_tron(
    devnet: TronDevnet,
    assets_file: Path,
    seed: Seed,
    account: int,
    count: int,
    *,
    delegate: bool,
    workdir: Path,
) -> Outcome:
    scenario = "tron_delegated" if delegate else "tron_naive"
    prefix = f"m/44'/195'/{account}'"
    sweeps = SweepSettings(
        tron_api_url=devnet.url, sweep_tron_delegation="auto" if delegate else "never"
    )
    infos: dict[str, TronInfo] = {}
    async with (
        gateway(scenario, assets_file, sweeps, tron_xpub=seed.account_xpub(prefix)) as ctx,
        httpx.AsyncClient(base_url=devnet.url, timeout=60) as http,
    ):
        log(f"{scenario}: {count} intents")
        addresses = await deposit_addresses(ctx, "tron", count)
        paid = amounts(count)
        log(f"{scenario}: paying the addresses")
        await asyncio.to_thread(_pay_tron, devnet, addresses, paid)
        fee_path = f"{prefix}/1/0"
        fee_wallet = seed.address(fee_path, "tron")
        staked = STAKE_PER_ADDRESS_TRX * TRX * count if delegate else 0
        devnet.fund(fee_wallet, trx_sun=staked + (100 * count + 10_000) * TRX)
        if delegate:
            devnet.stake(seed.private_key(fee_path).hex(), staked, "ENERGY")
        treasury = seed.address(f"m/44'/195'/{account + 1}'/0/0", "tron")
        depth = ctx.confirmations_for("tron")
        devnet.mine(depth + 1)  # the payments into the solidified state
        sign = signer(
            workdir / scenario, tron_policy(prefix, devnet.tokens["USDT"], treasury), seed
        )

        async def mine() -> None:
            await asyncio.to_thread(devnet.mine, depth)

        async def facts(transfers: list[OutgoingTransfer]) -> list[ChainTxConfirmed]:
            head = devnet.head()
            out = []
            for t in transfers:
                body = {"value": t.tx_hash}
                info = (await http.post("wallet/gettransactioninfobyid", json=body)).json()
                if info.get("id") != t.tx_hash:
                    continue  # not mined (yet)
                receipt = info.get("receipt", {})
                infos[t.id] = TronInfo(
                    fee=int(info.get("fee", 0)),
                    energy_fee=int(receipt.get("energy_fee", 0)),
                    net_fee=int(receipt.get("net_fee", 0)),
                    energy=int(receipt.get("energy_usage_total", 0)),
                    bandwidth=int(receipt.get("net_usage", 0)),
                )
                block = info["blockNumber"]
                out.append(
                    ChainTxConfirmed(
                        network="tron",
                        tx_hash=t.tx_hash or "",
                        block_number=block,
                        block_hash=devnet.block_id(block),
                        block_timestamp=datetime.fromtimestamp(
                            info["blockTimeStamp"] / 1000, tz=UTC
                        ),
                        success=receipt.get("result", "SUCCESS") == "SUCCESS",
                        gas_used=None,
                        effective_gas_price=None,
                        energy_used=infos[t.id].energy,
                        bandwidth_used=infos[t.id].bandwidth,
                        fee_paid_base_units=infos[t.id].fee,
                        confirmations=head - block + 1,
                        confirmations_required=depth,
                    )
                )
            return out

        phases = Phases()
        targets = SweepTargets(treasury, fee_wallet, fee_path)
        batches = await sweep_until_done(
            ctx, "tron", targets, sign, mine=mine, facts=facts, phases=phases
        )
        transfers = await all_transfers(ctx, batches)
        left = [a for a in addresses if devnet.token_balance("USDT", a)]
        if left:
            raise BenchError(f"{scenario}: {len(left)} addresses still hold USDT, e.g. {left[0]}")
        per: dict[str, dict[str, int]] = {}
        for t in transfers:
            info = infos[t.id]
            row = per.setdefault(deposit_of(t), dict.fromkeys(TRON_FIGURES, 0))
            row["trx_burned_sun"] += info.fee
            row["energy_burn_sun"] += info.energy_fee
            row["bandwidth_burn_sun"] += info.net_fee
            row["other_burn_sun"] += info.fee - info.energy_fee - info.net_fee
            row["energy"] += info.energy
            row["bandwidth"] += info.bandwidth
            row["transactions"] += 1
        return Outcome(
            scenario=scenario,
            addresses=count,
            phases=phases,
            batches=len(batches),
            transfers=_count(transfers),
            per_address={k: [row[k] for row in per.values()] for k in TRON_FIGURES},
            swept=devnet.token_balance("USDT", treasury),
            paid_in=sum(paid),
            delegated_addresses=sum(t.purpose == "resource_delegation" for t in transfers),
            staked_sun=staked,
        )


TRON_COST_HEADERS = (
    "scenario",
    "TRX burned (range)",
    "energy",
    "bandwidth",
    "accounts",
    "energy used",
    "bytes",
    "txs",
)
TRON_FIGURES = (
    "trx_burned_sun",
    "energy_burn_sun",
    "bandwidth_burn_sun",
    "other_burn_sun",
    "energy",
    "bandwidth",
    "transactions",
)


def _pay_tron(devnet: TronDevnet, addresses: list[str], paid: list[int]) -> None:
    """One faucet USDT transfer per address, a block every 500."""
    for i, (address, amount) in enumerate(zip(addresses, paid, strict=True)):
        devnet.fund(address, tokens={"USDT": amount}, mine=False)
        if i % 500 == 499:
            devnet.mine(1)
    devnet.mine(1)


# -- Ethereum on anvil ----------------------------------------------------------------------


def evm_policy(prefix: str, chain: BenchChain, treasury: str) -> str:
    usdt = to_checksum_address(chain.usdt)
    usdc = to_checksum_address(chain.tokens.usdc)
    return f"""
[networks.ethereum]
chain_id = {SPEC.chain_id}
path_prefixes = ["{prefix}"]
max_fee_per_transaction = "0.1"
max_fee_per_request = "1000"

[networks.ethereum.assets]
ETH = {{ decimals = 18 }}
USDT = {{ contract = "{usdt}", decimals = 6 }}
USDC = {{ contract = "{usdc}", decimals = 6 }}

[networks.ethereum.purposes.sweep]
destinations = ["{treasury}"]

[networks.ethereum.purposes.fee_topup]
destinations = "own"
"""


async def run_ethereum(
    chain: BenchChain, seed: Seed, account: int, count: int, *, workdir: Path
) -> Outcome:
    prefix = f"m/44'/60'/{account}'"
    sweeps = SweepSettings(rpc_url_ethereum=chain.rpc_url)
    async with gateway(
        "ethereum", chain.assets_file, sweeps, evm_xpub=seed.account_xpub(prefix)
    ) as ctx:
        log(f"ethereum: {count} intents")
        addresses = [a.lower() for a in await deposit_addresses(ctx, "ethereum", count)]
        paid = amounts(count)
        log("ethereum: paying the addresses")
        payer = chain.tokens.deployer
        await chain.fund(payer, sum(paid) // USDT + 1)
        await chain.set_automine(False)
        txs = [
            await chain.batch_transfer_tx(payer, list(zip(addresses, paid, strict=True))[i:j])
            for i, j in _chunks(count, 200)
        ]
        hashes = await chain.send_transactions(txs)
        depth = ctx.confirmations_for("ethereum")
        await chain.mine(depth)
        await chain.wait_receipts(hashes)
        fee_path = f"{prefix}/1/0"
        fee_wallet = seed.address(fee_path, "ethereum")
        await chain.rpc("anvil_setBalance", fee_wallet, hex(10**24))
        await chain.mine(depth)
        treasury = to_checksum_address(seed.address(f"m/44'/60'/{account + 1}'/0/0", "ethereum"))
        sign = signer(workdir / "ethereum", evm_policy(prefix, chain, treasury), seed)
        receipts: dict[str, dict[str, Any]] = {}

        async def mine() -> None:
            await chain.mine(depth)

        async def facts(transfers: list[OutgoingTransfer]) -> list[ChainTxConfirmed]:
            if not transfers:
                return []
            got = await chain.batch([("eth_getTransactionReceipt", [t.tx_hash]) for t in transfers])
            head = await chain.head()
            blocks: dict[str, int] = {}
            out = []
            for t, receipt in zip(transfers, got, strict=True):
                if receipt is None:
                    continue
                receipts[t.id] = receipt
                number = int(receipt["blockNumber"], 16)
                if receipt["blockHash"] not in blocks:
                    block = await chain.rpc("eth_getBlockByHash", receipt["blockHash"], False)
                    blocks[receipt["blockHash"]] = int(block["timestamp"], 16)
                gas, price = int(receipt["gasUsed"], 16), int(receipt["effectiveGasPrice"], 16)
                out.append(
                    ChainTxConfirmed(
                        network="ethereum",
                        tx_hash=receipt["transactionHash"],
                        block_number=number,
                        block_hash=receipt["blockHash"],
                        block_timestamp=datetime.fromtimestamp(
                            blocks[receipt["blockHash"]], tz=UTC
                        ),
                        success=receipt["status"] == "0x1",
                        gas_used=gas,
                        effective_gas_price=price,
                        energy_used=None,
                        bandwidth_used=None,
                        fee_paid_base_units=gas * price,
                        confirmations=head - number + 1,
                        confirmations_required=depth,
                    )
                )
            return out

        phases = Phases()
        targets = SweepTargets(treasury.lower(), fee_wallet.lower(), fee_path)
        try:
            batches = await sweep_until_done(
                ctx, "ethereum", targets, sign, mine=mine, facts=facts, phases=phases
            )
        finally:
            await chain.set_automine(True)
        transfers = await all_transfers(ctx, batches)
        left = [a for a, b in zip(addresses, await chain.balances(addresses), strict=True) if b]
        if left:
            raise BenchError(f"ethereum: {len(left)} addresses still hold USDT, e.g. {left[0]}")
        per: dict[str, dict[str, int]] = {}
        for t in transfers:
            receipt = receipts[t.id]
            gas = int(receipt["gasUsed"], 16)
            row = per.setdefault(deposit_of(t), dict.fromkeys(EVM_FIGURES, 0))
            row["gas"] += gas
            row["topup_gas" if t.purpose == "fee_topup" else "sweep_gas"] += gas
            row["fee_wei"] += gas * int(receipt["effectiveGasPrice"], 16)
            row["transactions"] += 1
        (swept,) = await chain.balances([treasury])
        return Outcome(
            scenario="ethereum",
            addresses=count,
            phases=phases,
            batches=len(batches),
            transfers=_count(transfers),
            per_address={k: [row[k] for row in per.values()] for k in EVM_FIGURES},
            swept=swept,
            paid_in=sum(paid),
        )


EVM_FIGURES = ("gas", "topup_gas", "sweep_gas", "fee_wei", "transactions")


def _chunks(count: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(i + size, count)) for i in range(0, count, size)]


# -- the run --------------------------------------------------------------------------------


def random_seed() -> Seed:
    return Seed(str(Bip39MnemonicGenerator().FromWordsNumber(Bip39WordsNum.WORDS_NUM_24)))


async def one_round(
    args: argparse.Namespace, devnet: TronDevnet, tron_assets: Path, chain: BenchChain | None
) -> list[Outcome]:
    seed = random_seed()  # a new mnemonic per round: every address is new
    count: int = args.addresses
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        workdir = Path(tmp)
        if "tron" in args.networks:
            for delegate in (True, False):
                outcomes.append(
                    await run_tron(
                        devnet,
                        tron_assets,
                        seed,
                        10 if delegate else 20,
                        count,
                        delegate=delegate,
                        workdir=workdir,
                    )
                )
        if chain is not None:
            outcomes.append(await run_ethereum(chain, seed, 30, count, workdir=workdir))
    return outcomes


async def run(args: argparse.Namespace) -> None:
    report = Report(
        NAME,
        args,
        {
            "addresses": args.addresses,
            "networks": args.networks,
            "stake_per_address_trx": STAKE_PER_ADDRESS_TRX,
        },
    )
    rounds: list[list[Outcome]] = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-chain-") as tmp:
        devnet = start_tron_devnet(free_port(), DevnetConfig(block_time=0, solidification_depth=19))
        try:
            tron_assets = Path(tmp) / "tron-assets.json"
            tron_assets.write_text(json.dumps(devnet.assets_overlay()))
            if "ethereum" in args.networks:
                async with bench_chain(Path(tmp) / "anvil", gas_limit=1_000_000_000) as chain:
                    for number in range(args.rounds):
                        log(f"round {number + 1}/{args.rounds}")
                        rounds.append(await one_round(args, devnet, tron_assets, chain))
            else:
                for number in range(args.rounds):
                    log(f"round {number + 1}/{args.rounds}")
                    rounds.append(await one_round(args, devnet, tron_assets, None))
        finally:
            devnet.stop()
    finish(report, rounds)


def finish(report: Report, rounds: list[list[Outcome]]) -> None:
    scenarios = [o.scenario for o in rounds[0]]
    by: dict[str, list[Outcome]] = {s: [r[i] for r in rounds] for i, s in enumerate(scenarios)}
    count = rounds[0][0].addresses
    rows = []
    for phase in PHASES:
        row: list[object] = [PHASE_TITLES[phase]]
        for s in scenarios:
            row.append(Spread.of([o.phases.wall[phase] for o in by[s]]).show(1))
            row.append(Spread.of([o.phases.cpu[phase] / o.addresses for o in by[s]]).show(2, 1e3))
        rows.append(row)
    total: list[object] = ["whole sweep"]
    for s in scenarios:
        total.append(Spread.of([sum(o.phases.wall.values()) for o in by[s]]).show(1))
        total.append(
            Spread.of([sum(o.phases.cpu.values()) / o.addresses for o in by[s]]).show(2, 1e3)
        )
    rows.append(total)
    headers = ["phase"] + [h for s in scenarios for h in (f"{s} s", f"{s} CPU ms/addr")]
    report.add_table(f"Sweep of {count:,} deposit addresses: seconds per phase", headers, rows)

    cost_rows: list[list[object]] = []
    medians: dict[str, dict[str, float]] = {}
    for s in scenarios:
        figures = TRON_FIGURES if s.startswith("tron") else EVM_FIGURES
        medians[s] = {
            k: Spread.of([_median(o.per_address[k]) for o in by[s]]).median for k in figures
        }
        spread = {k: _range(by[s][-1].per_address[k]) for k in figures}
        if s.startswith("tron"):
            cost_rows.append(
                [
                    s,
                    f"{medians[s]['trx_burned_sun'] / TRX:,.3f} {spread['trx_burned_sun']}",
                    f"{medians[s]['energy_burn_sun'] / TRX:,.3f}",
                    f"{medians[s]['bandwidth_burn_sun'] / TRX:,.3f}",
                    f"{medians[s]['other_burn_sun'] / TRX:,.3f}",
                    f"{medians[s]['energy']:,.0f}",
                    f"{medians[s]['bandwidth']:,.0f}",
                    f"{medians[s]['transactions']:.0f}",
                ]
            )
    if any(s.startswith("tron") for s in scenarios):
        report.add_table(
            "Tron: what the chain charged per address (median over addresses; sun / 10^6)",
            TRON_COST_HEADERS,
            cost_rows,
        )
    ratio = None
    if "tron_delegated" in medians and "tron_naive" in medians:
        delegated, naive = (medians[s]["trx_burned_sun"] for s in ("tron_delegated", "tron_naive"))
        ratio = naive / delegated if delegated else float("inf")
        print(
            f"\nTRX burned per address: naive {naive / TRX:,.3f}, delegated "
            f"{delegated / TRX:,.3f}: delegation burns {delegated / naive:.1%} of naive "
            f"({ratio:.1f}x less); the delegating fee wallet keeps "
            f"{by['tron_delegated'][-1].staked_sun / TRX:,.0f} TRX staked (locked, not spent)",
            flush=True,
        )
    if "ethereum" in medians:
        e = medians["ethereum"]
        report.add_table(
            "Ethereum (anvil): gas per address (median over addresses)",
            ["figure", "gas"],
            [
                ["top-up (ETH transfer)", f"{e['topup_gas']:,.0f}"],
                ["sweep (USDT transfer)", f"{e['sweep_gas']:,.0f}"],
                ["both", f"{e['gas']:,.0f}"],
            ],
        )
    results: dict[str, Any] = {
        "rounds": [
            {
                o.scenario: {
                    "addresses": o.addresses,
                    "batches": o.batches,
                    "transfers": o.transfers,
                    "seconds": o.phases.wall,
                    "cpu_seconds": o.phases.cpu,
                    "per_address_median": {k: _median(v) for k, v in o.per_address.items()},
                    "per_address_min": {k: min(v) for k, v in o.per_address.items()},
                    "per_address_max": {k: max(v) for k, v in o.per_address.items()},
                    "swept_base_units": o.swept,
                    "paid_in_base_units": o.paid_in,
                    "delegated_addresses": o.delegated_addresses,
                    "staked_sun": o.staked_sun,
                }
                for o in outcome
            }
            for outcome in rounds
        ],
        "medians": medians,
        "trx_naive_over_delegated": ratio,
    }
    everything = all(o.swept == o.paid_in for r in rounds for o in r)
    goals = {
        "all_swept": goal(everything, "every paid-in base unit reached the treasury"),
    }
    if ratio is not None:
        goals["delegation_cheaper"] = goal(ratio > 1, f"naive burns {ratio:.1f}x the TRX")
    report.finish(results, goals)


def _median(values: list[int]) -> float:
    return Spread.of([float(v) for v in values]).median


def _range(values: list[int]) -> str:
    return f"({min(values) / TRX:,.3f}..{max(values) / TRX:,.3f})"


def main() -> int:
    cli = parser(__doc__.splitlines()[0], rounds=1)
    cli.add_argument("--addresses", type=int, default=1000, help="deposit addresses per scenario")
    cli.add_argument("--networks", default="tron,ethereum", help="comma-separated: tron, ethereum")
    args = cli.parse_args()
    if args.quick:
        args.addresses = min(args.addresses, 6)
        args.rounds = 1
    args.networks = [n.strip() for n in args.networks.split(",") if n.strip()]
    unknown = set(args.networks) - {"tron", "ethereum"}
    if unknown:
        cli.error(f"--networks: unknown {', '.join(sorted(unknown))}")
    if args.addresses < 1:
        cli.error("--addresses: at least 1")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
