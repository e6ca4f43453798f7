"""plan_sweeps against real chains: anvil with the devnet's tokens and the Tron devnet.

Each test derives its deposit addresses from an account of its own (a random BIP-44
account of the test mnemonic), so the shared chains hold exactly the balances it put
there. Intents allocate the addresses; the one left open must not be swept; a second
plan while the first batch is unfinished plans nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from eth_utils import to_checksum_address
from sqlalchemy import update

from devnet.tron import TronDevnet
from stablegate_common.events.contracts import ChainTxNotFound
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.outgoing import repository
from stablegate_gateway.outgoing.config import OutgoingSettings
from stablegate_gateway.outgoing.consumers import apply_not_found
from stablegate_gateway.outgoing.models import OutgoingTransfer
from stablegate_gateway.outgoing.planner import TRX
from stablegate_gateway.outgoing.replan import TronReplan
from stablegate_gateway.outgoing.sweep_config import SweepSettings
from stablegate_gateway.outgoing.sweeps import SWEEP_PENDING, SweepTargets, plan_sweeps
from stablegate_signer import documents
from stablegate_signer.keys import Seed
from stablegate_signer.policy import Policy
from stablegate_signer.signing import Signer
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.payments import create_intent
from tests.fixtures.tron import fresh_tron_account
from tests.gateway.outgoing_support import make_batch, tron_plan

SEED = Seed("test test test test test test test test test test test junk")
USDT = 10**6


async def _merchant(ctx: GatewayContext) -> str:
    from stablegate_gateway.merchants.service import create_merchant

    async with ctx.db.transaction() as session:
        created = await create_merchant(session, ctx, name="Sweeps", mode="test")
    return created.merchant.id


async def _close_intents(ctx: GatewayContext, intent_ids: list[str]) -> None:
    async with ctx.db.transaction() as session:
        await session.execute(
            update(PaymentIntent).where(PaymentIntent.id.in_(intent_ids)).values(status="paid")
        )


async def _plan(ctx: GatewayContext, network: str, targets: dict[str, SweepTargets]) -> list[Any]:
    async with ctx.db.transaction() as session:
        return await plan_sweeps(session, ctx, network, "test", targets=targets)


async def _transfers(ctx: GatewayContext, batch_id: str) -> list[OutgoingTransfer]:
    async with ctx.db.sessions() as session:
        return await repository.batch_transfers(session, batch_id)


def _account() -> int:
    return 1000 + secrets.randbelow(2**30)


# --- Ethereum on anvil -----------------------------------------------------------------------


async def test_ethereum_sweep_plan_on_anvil(
    anvil: AnvilChain, sweep_ctx: Callable[..., Any]
) -> None:
    account = _account()
    xpub = SEED.account_xpub(f"m/44'/60'/{account}'")
    sweeps = SweepSettings(rpc_url_ethereum=anvil.rpc_url, sweep_min_amount="10")
    ctx: GatewayContext = await sweep_ctx(anvil.assets_file, sweeps, evm_xpub=xpub)
    merchant = await _merchant(ctx)
    intents = [await create_intent(ctx, merchant, network="ethereum") for _ in range(4)]
    # Outgoing transfers store EVM addresses lowercase (EIP-55 only in the signing request).
    addresses = [i.deposit_address.lower() for i in intents]
    await _close_intents(ctx, [i.id for i in intents[:3]])  # the fourth stays open
    fee_wallet = (await anvil.new_account(10**20)).lower()
    treasury = fresh_address().lower()
    await anvil.transfer(anvil.usdt, addresses[0], 500 * USDT)
    await anvil.transfer(anvil.usdc, addresses[0], 40 * USDT)
    await anvil.transfer(anvil.usdt, addresses[1], 120 * USDT)
    await anvil.transfer(anvil.usdt, addresses[2], 9 * USDT)  # below the threshold
    await anvil.transfer(anvil.usdt, addresses[3], 300 * USDT)  # open intent
    await anvil.send({"from": anvil.accounts[1], "to": addresses[1], "value": hex(10**12)})
    await anvil.mine(ctx.confirmations_for("ethereum"))
    targets = {"ethereum": SweepTargets(treasury, fee_wallet, f"m/44'/60'/{account}'/1/0")}

    (batch,) = await _plan(ctx, "ethereum", targets)
    transfers = await _transfers(ctx, batch.id)
    sweeps_ = [t for t in transfers if t.purpose == "sweep"]
    topups = [t for t in transfers if t.purpose == "fee_topup"]
    swept = {(t.source_address, t.asset): t.amount_base_units for t in sweeps_}
    assert swept == {
        (addresses[0], "USDT"): 500 * USDT,
        (addresses[0], "USDC"): 40 * USDT,
        (addresses[1], "USDT"): 120 * USDT,
    }
    assert {t.destination_address for t in sweeps_} == {treasury}
    # The fee wallet's nonces from its pending nonce (a new account: 0), one per top-up.
    assert sorted(t.nonce for t in topups) == [0, 1]
    assert {t.source_address for t in topups} == {fee_wallet}
    # Each top-up is exactly gas limit x max fee for the address's sweeps, less its ETH.
    for topup in topups:
        mine = [t for t in sweeps_ if t.source_address == topup.destination_address]
        need = sum(t.gas_limit * t.max_fee_per_gas for t in mine)  # type: ignore[operator]
        have = 10**12 if topup.destination_address == addresses[1] else 0
        assert topup.amount_base_units == need - have
        assert all(t.depends_on == topup.id for t in mine)
        assert topup.gas_limit == 21_000
    for sweep in sweeps_:
        estimate = int(
            await anvil.rpc(
                "eth_estimateGas",
                anvil.call_request(
                    sweep.source_address,
                    sweep.token_contract,
                    "transfer(address,uint256)",
                    treasury,
                    sweep.amount_base_units,
                ),
            ),
            16,
        )
        assert sweep.gas_limit == -(-estimate * 5 // 4)  # the 1.25 margin, rounded up
    assert [t.nonce for t in sweeps_ if t.source_address == addresses[0]] == [0, 1]
    block = await anvil.rpc("eth_getBlockByNumber", "pending", False)
    for t in transfers:
        assert t.max_fee_per_gas is not None
        assert t.max_priority_fee_per_gas is not None
        assert t.max_fee_per_gas >= int(block["baseFeePerGas"], 16)
    summary = batch.plan_summary
    assert summary["totals"] == {"USDC": str(40 * USDT), "USDT": str(620 * USDT)}
    assert summary["skipped"] == {"below_threshold": "1"}
    assert summary["native_symbol"] == "ETH"
    pending = SWEEP_PENDING.labels("ethereum", "USDT")._value.get()
    assert pending == 629 * USDT  # the open-intent address was not even read

    # The first batch is unfinished: a second plan makes nothing.
    assert await _plan(ctx, "ethereum", targets) == []


# --- Tron devnet -----------------------------------------------------------------------------


async def test_tron_sweep_plan_delegates_where_staked_and_burns_otherwise(
    tron_devnet: TronDevnet, tron_assets_file: Path, sweep_ctx: Callable[..., Any]
) -> None:
    account = _account()
    xpub = SEED.account_xpub(f"m/44'/195'/{account}'")
    sweeps = SweepSettings(tron_api_url=tron_devnet.url, sweep_min_amount="10")
    ctx: GatewayContext = await sweep_ctx(tron_assets_file, sweeps, tron_xpub=xpub)
    merchant = await _merchant(ctx)
    intents = [await create_intent(ctx, merchant, network="tron") for _ in range(3)]
    addresses = [i.deposit_address for i in intents]
    await _close_intents(ctx, [i.id for i in intents[:2]])
    fee_wallet = fresh_tron_account()
    tron_devnet.fund(fee_wallet.address, trx_sun=100_000 * TRX)
    # Enough stake for one address's sweep (≈ 17,000 TRX at the devnet's weights), not two.
    tron_devnet.stake(fee_wallet.private_key, 25_000 * TRX, "ENERGY")
    treasury = fresh_tron_account().address
    tron_devnet.fund(addresses[0], tokens={"USDT": 500 * USDT}, mine=False)
    tron_devnet.fund(addresses[1], tokens={"USDT": 200 * USDT}, mine=False)
    tron_devnet.fund(addresses[2], tokens={"USDT": 300 * USDT})  # open intent
    tron_devnet.mine(25)  # into the solidified state
    targets = {"tron": SweepTargets(treasury, fee_wallet.address, f"m/44'/195'/{account}'/1/0")}

    (batch,) = await _plan(ctx, "tron", targets)
    transfers = await _transfers(ctx, batch.id)
    by_purpose: dict[str, list[OutgoingTransfer]] = {}
    for t in transfers:
        by_purpose.setdefault(t.purpose, []).append(t)
    sweeps_ = by_purpose["sweep"]
    assert {t.source_address: t.amount_base_units for t in sweeps_} == {
        addresses[0]: 500 * USDT,
        addresses[1]: 200 * USDT,
    }
    # The larger address sweeps on delegated energy, the other burns TRX for it.
    (delegation,) = by_purpose["resource_delegation"]
    (undelegation,) = by_purpose["resource_undelegation"]
    assert delegation.destination_address == addresses[0]
    assert (delegation.resource, delegation.lock) == ("ENERGY", False)
    assert undelegation.amount_base_units == delegation.amount_base_units
    resource = await _tron_call(tron_devnet, "wallet/getaccountresource", fee_wallet.address)
    sweep0 = next(t for t in sweeps_ if t.source_address == addresses[0])
    sweep1 = next(t for t in sweeps_ if t.source_address == addresses[1])
    whole = delegation.amount_base_units // TRX
    energy = whole * resource["TotalEnergyLimit"] // resource["TotalEnergyWeight"]
    assert energy >= -(-sweep0.estimated_energy * 5 // 4)  # type: ignore[operator]
    assert sweep0.depends_on == delegation.id
    assert undelegation.depends_on == sweep0.id
    # Both addresses only received TRC-20: each gets a TRX transfer that activates it.
    topups = {t.destination_address: t for t in by_purpose["fee_topup"]}
    assert set(topups) == {addresses[0], addresses[1]}
    assert delegation.depends_on == topups[addresses[0]].id
    assert topups[addresses[0]].amount_base_units == 1  # activation only: energy is delegated
    assert topups[addresses[1]].amount_base_units == sweep1.fee_limit  # the burn ceiling
    for topup in topups.values():
        assert topup.estimated_fee_base_units >= TRX  # the account creation fee, counted
        assert topup.source_address == fee_wallet.address
    assert sweep1.depends_on == topups[addresses[1]].id
    assert sweep1.fee_limit == -(-sweep1.estimated_energy * 5 // 4) * 100  # type: ignore[operator]
    for t in transfers:
        assert t.expiration_ms is not None
        assert t.timestamp_ms is not None
        assert t.expiration_ms - t.timestamp_ms == 3000 * 1000
        assert t.ref_block_bytes is not None
        assert len(t.ref_block_bytes) == 4
    summary = batch.plan_summary
    assert summary["totals"] == {"USDT": str(700 * USDT)}
    assert int(summary["network_cost_base_units"]) == sum(
        t.estimated_fee_base_units for t in transfers
    )

    assert await _plan(ctx, "tron", targets) == []


async def _tron_call(devnet: TronDevnet, path: str, address: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=devnet.url, timeout=10) as client:
        answer = await client.post(path, json={"address": address, "visible": True})
    result: dict[str, Any] = answer.json()
    return result


# --- the plan pays: signed by the real signer, broadcast, every transaction succeeds -----------


def _signer(directory: Path, policy: str) -> Signer:
    path = directory / "policy.toml"
    path.write_text(policy, encoding="utf-8")
    path.chmod(0o600)
    return Signer(SEED, Policy.load(path))


async def _signed_round(ctx: GatewayContext, batch_id: str, signer: Signer) -> None:
    async with ctx.db.transaction() as session:
        request_text = await repository.issue_request(session, batch_id, by="test")
    signed = documents.dump(signer.sign(documents.load_request(request_text))).encode()
    async with ctx.db.transaction() as session:
        await repository.accept_signed(session, signed, by="test")


def _levels(transfers: list[OutgoingTransfer]) -> list[list[OutgoingTransfer]]:
    """Transfers grouped by dependency depth: each group waits for the one before."""
    depth: dict[str, int] = {}
    for t in transfers:  # a dependency comes first in a batch
        depth[t.id] = 0 if t.depends_on is None else depth[t.depends_on] + 1
    groups: list[list[OutgoingTransfer]] = [[] for _ in range(max(depth.values()) + 1)]
    for t in transfers:
        groups[depth[t.id]].append(t)
    return groups


async def test_an_ethereum_plan_signed_and_broadcast_pays_exactly(
    anvil: AnvilChain, sweep_ctx: Callable[..., Any], tmp_path: Path
) -> None:
    account = _account()
    prefix = f"m/44'/60'/{account}'"
    sweeps = SweepSettings(rpc_url_ethereum=anvil.rpc_url)
    ctx: GatewayContext = await sweep_ctx(
        anvil.assets_file, sweeps, evm_xpub=SEED.account_xpub(prefix)
    )
    merchant = await _merchant(ctx)
    intents = [await create_intent(ctx, merchant, network="ethereum") for _ in range(2)]
    await _close_intents(ctx, [i.id for i in intents])
    addresses = [to_checksum_address(i.deposit_address) for i in intents]
    fee_path = f"{prefix}/1/0"
    fee_wallet = SEED.address(fee_path, "ethereum")
    await anvil.send({"from": anvil.accounts[1], "to": fee_wallet, "value": hex(10**18)})
    treasury = to_checksum_address(fresh_address())
    await anvil.transfer(anvil.usdt, addresses[0], 250 * USDT)
    await anvil.transfer(anvil.usdc, addresses[0], 30 * USDT)
    await anvil.transfer(anvil.usdt, addresses[1], 70 * USDT)
    await anvil.mine(ctx.confirmations_for("ethereum"))
    (batch,) = await _plan(
        ctx, "ethereum", {"ethereum": SweepTargets(treasury, fee_wallet, fee_path)}
    )
    usdt, usdc = to_checksum_address(anvil.usdt), to_checksum_address(anvil.usdc)
    policy = f"""
[networks.ethereum]
chain_id = {anvil.chain_id}
path_prefixes = ["{prefix}"]
max_fee_per_transaction = "0.1"
max_fee_per_request = "1"

[networks.ethereum.assets]
ETH = {{ decimals = 18 }}
USDT = {{ contract = "{usdt}", decimals = 6 }}
USDC = {{ contract = "{usdc}", decimals = 6 }}

[networks.ethereum.purposes.sweep]
destinations = ["{treasury}"]

[networks.ethereum.purposes.fee_topup]
destinations = "own"
"""
    await _signed_round(ctx, batch.id, _signer(tmp_path, policy))
    transfers = await _transfers(ctx, batch.id)
    for level in _levels(transfers):
        hashes = [await anvil.rpc("eth_sendRawTransaction", t.signed_hex) for t in level]
        for tx_hash in hashes:
            assert (await anvil.receipt(tx_hash))["status"] == "0x1"
    assert await anvil.balance_of(anvil.usdt, treasury) == 320 * USDT
    assert await anvil.balance_of(anvil.usdc, treasury) == 30 * USDT
    for address in addresses:
        assert await anvil.balance_of(anvil.usdt, address) == 0


async def test_a_tron_plan_signed_and_broadcast_sweeps_on_delegated_and_burned_energy(
    tron_devnet: TronDevnet, tron_assets_file: Path, sweep_ctx: Callable[..., Any], tmp_path: Path
) -> None:
    account = _account()
    prefix = f"m/44'/195'/{account}'"
    sweeps = SweepSettings(tron_api_url=tron_devnet.url)
    ctx: GatewayContext = await sweep_ctx(
        tron_assets_file, sweeps, tron_xpub=SEED.account_xpub(prefix)
    )
    merchant = await _merchant(ctx)
    intents = [await create_intent(ctx, merchant, network="tron") for _ in range(2)]
    await _close_intents(ctx, [i.id for i in intents])
    addresses = [i.deposit_address for i in intents]
    fee_path = f"{prefix}/1/0"
    fee_wallet = SEED.address(fee_path, "tron")
    tron_devnet.fund(fee_wallet, trx_sun=100_000 * TRX)
    tron_devnet.stake(SEED.private_key(fee_path).hex(), 25_000 * TRX, "ENERGY")
    treasury = fresh_tron_account().address
    tron_devnet.fund(addresses[0], tokens={"USDT": 400 * USDT}, mine=False)
    tron_devnet.fund(addresses[1], tokens={"USDT": 150 * USDT})
    tron_devnet.mine(25)
    (batch,) = await _plan(ctx, "tron", {"tron": SweepTargets(treasury, fee_wallet, fee_path)})
    policy = f"""
[networks.tron]
path_prefixes = ["{prefix}"]
max_fee_per_transaction = "40"
max_fee_per_request = "200"

[networks.tron.assets]
TRX = {{ decimals = 6 }}
USDT = {{ contract = "{tron_devnet.tokens["USDT"]}", decimals = 6 }}

[networks.tron.purposes.sweep]
destinations = ["{treasury}"]

[networks.tron.purposes.fee_topup]
destinations = "own"

[networks.tron.purposes.resource_delegation]
destinations = "own"

[networks.tron.purposes.resource_undelegation]
destinations = "own"
"""
    await _signed_round(ctx, batch.id, _signer(tmp_path, policy))
    transfers = await _transfers(ctx, batch.id)
    purposes = {t.purpose for t in transfers}
    assert {"resource_delegation", "resource_undelegation", "fee_topup", "sweep"} <= purposes
    async with httpx.AsyncClient(base_url=tron_devnet.url, timeout=10) as client:
        for level in _levels(transfers):
            for t in level:
                answer = (
                    await client.post("wallet/broadcasthex", json={"transaction": t.signed_hex})
                ).json()
                assert answer["result"] is True, (t.purpose, answer)
            tron_devnet.mine(1)
            for t in level:
                if t.purpose == "resource_delegation":
                    # The devnet's own energy formula gives the receiver the planned energy.
                    sweep = next(x for x in transfers if x.depends_on == t.id)
                    got = await _tron_call(
                        tron_devnet, "wallet/getaccountresource", t.destination_address or ""
                    )
                    planned = -(-(sweep.estimated_energy or 0) * 5 // 4)
                    assert got["EnergyLimit"] >= planned
        for t in transfers:
            info = (
                await client.post("wallet/gettransactioninfobyid", json={"value": t.tx_hash})
            ).json()
            assert info.get("id") == t.tx_hash, (t.purpose, info)  # mined
            assert info.get("receipt", {}).get("result", "SUCCESS") == "SUCCESS", (t.purpose, info)
            if t.purpose == "sweep" and t.source_address == addresses[0]:
                # Swept on delegated energy: no TRX burned for it.
                assert info["receipt"].get("energy_fee", 0) == 0, info
    assert tron_devnet.token_balance("USDT", treasury) == 550 * USDT
    for address in addresses:
        assert tron_devnet.token_balance("USDT", address) == 0


async def test_a_bsc_plan_is_legacy_priced_and_pays(
    anvil_bsc: AnvilChain, sweep_ctx: Callable[..., Any], tmp_path: Path
) -> None:
    account = _account()
    prefix = f"m/44'/60'/{account}'"
    sweeps = SweepSettings(rpc_url_bsc=anvil_bsc.rpc_url)
    ctx: GatewayContext = await sweep_ctx(
        anvil_bsc.assets_file, sweeps, evm_xpub=SEED.account_xpub(prefix)
    )
    merchant = await _merchant(ctx)
    intent = await create_intent(ctx, merchant, network="bsc")
    await _close_intents(ctx, [intent.id])
    address = to_checksum_address(intent.deposit_address)
    fee_path = f"{prefix}/1/0"
    fee_wallet = SEED.address(fee_path, "bsc")
    await anvil_bsc.send({"from": anvil_bsc.accounts[1], "to": fee_wallet, "value": hex(10**18)})
    treasury = to_checksum_address(fresh_address())
    amount = 75 * 10**anvil_bsc.decimals
    await anvil_bsc.transfer(anvil_bsc.usdt, address, amount)
    await anvil_bsc.mine(ctx.confirmations_for("bsc"))
    (batch,) = await _plan(ctx, "bsc", {"bsc": SweepTargets(treasury, fee_wallet, fee_path)})
    transfers = await _transfers(ctx, batch.id)
    gas_price = int(await anvil_bsc.rpc("eth_gasPrice"), 16)
    for t in transfers:
        assert t.gas_price == gas_price
        assert t.max_fee_per_gas is None
        assert t.chain_id == anvil_bsc.chain_id
    topup, sweep = transfers
    assert topup.asset == "BNB"
    assert topup.amount_base_units == sweep.gas_limit * gas_price  # type: ignore[operator]
    usdt = to_checksum_address(anvil_bsc.usdt)
    policy = f"""
[networks.bsc]
chain_id = {anvil_bsc.chain_id}
path_prefixes = ["{prefix}"]
max_fee_per_transaction = "0.1"
max_fee_per_request = "1"

[networks.bsc.assets]
BNB = {{ decimals = 18 }}
USDT = {{ contract = "{usdt}", decimals = {anvil_bsc.decimals} }}

[networks.bsc.purposes.sweep]
destinations = ["{treasury}"]

[networks.bsc.purposes.fee_topup]
destinations = "own"
"""
    await _signed_round(ctx, batch.id, _signer(tmp_path, policy))
    for t in await _transfers(ctx, batch.id):
        tx_hash = await anvil_bsc.rpc("eth_sendRawTransaction", t.signed_hex)
        assert (await anvil_bsc.receipt(tx_hash))["status"] == "0x1"
    assert await anvil_bsc.balance_of(anvil_bsc.usdt, treasury) == amount


async def test_an_expired_tron_sweep_is_planned_again_once_its_round_is_finished(
    tron_devnet: TronDevnet, tron_assets_file: Path, sweep_ctx: Callable[..., Any]
) -> None:
    """The treasury and fee wallet come from the settings (as in production); the sweep's
    transaction expires unmined, so the funds are still there and a new round takes them."""
    account = _account()
    fee_path = f"m/44'/195'/{account}'/1/0"
    fee_wallet = SEED.address(fee_path, "tron")
    outgoing = OutgoingSettings(
        treasury_address_tron=fresh_tron_account().address,
        fee_wallet_address_tron=fee_wallet,
        fee_wallet_path_tron=fee_path,
    )
    sweeps = SweepSettings(
        tron_api_url=tron_devnet.url, sweep_min_amount="10", sweep_tron_delegation="never"
    )
    ctx: GatewayContext = await sweep_ctx(
        tron_assets_file, sweeps, outgoing, tron_xpub=SEED.account_xpub(f"m/44'/195'/{account}'")
    )
    merchant = await _merchant(ctx)
    intent = await create_intent(ctx, merchant, network="tron")
    await _close_intents(ctx, [intent.id])
    tron_devnet.fund(fee_wallet, trx_sun=10_000 * TRX, mine=False)
    tron_devnet.fund(intent.deposit_address, tokens={"USDT": 500 * USDT})
    tron_devnet.mine(25)
    async with ctx.db.transaction() as session:
        (batch,) = await plan_sweeps(session, ctx, "tron", "test")
    transfers = await _transfers(ctx, batch.id)
    sweep = next(t for t in transfers if t.purpose == "sweep")
    assert (sweep.source_address, sweep.amount_base_units) == (intent.deposit_address, 500 * USDT)
    # The signing round itself is tested above; here the top-up went through and the
    # sweep is out on the network with a hash.
    async with ctx.db.transaction() as session:
        await session.execute(
            update(OutgoingTransfer)
            .where(OutgoingTransfer.batch_id == batch.id)
            .values(state="confirmed")
        )
        await session.execute(
            update(OutgoingTransfer)
            .where(OutgoingTransfer.id == sweep.id)
            .values(state="broadcast", tx_hash="ab" * 32)
        )

    replan = TronReplan(ctx)
    assert sweep.expiration_ms is not None
    past = datetime.fromtimestamp(sweep.expiration_ms / 1000 + 3, tz=UTC)
    not_found = ChainTxNotFound(
        network="tron", tx_hash="ab" * 32, checked_at=past, head_block=99, head_timestamp=past
    )
    async with ctx.db.transaction() as session:
        transfer = await repository.lock_transfer(session, sweep.id)
        await apply_not_found(session, transfer, not_found, replan.expired)
    assert replan.wanted == {"tron"}
    (expired,) = [t for t in await _transfers(ctx, batch.id) if t.id == sweep.id]
    assert expired.state == "failed"
    assert "expired unmined" in (expired.failure_reason or "")

    new_ids = await replan.replan("tron")
    assert new_ids is not None
    assert len(new_ids) == 1
    assert replan.wanted == set()
    again = [t for t in await _transfers(ctx, new_ids[0]) if t.purpose == "sweep"]
    assert [(t.source_address, t.amount_base_units) for t in again] == [
        (intent.deposit_address, 500 * USDT)
    ]


async def test_a_replan_waits_while_the_round_is_unfinished(
    tron_devnet: TronDevnet, tron_assets_file: Path, sweep_ctx: Callable[..., Any]
) -> None:
    ctx: GatewayContext = await sweep_ctx(
        tron_assets_file, SweepSettings(tron_api_url=tron_devnet.url)
    )
    batch_id = await make_batch(ctx, tron_plan())
    replan = TronReplan(ctx)
    replan.wanted.add("tron")
    assert await replan.replan("tron") is None
    assert replan.wanted == {"tron"}
    async with ctx.db.sessions() as session:
        assert await repository.unfinished_batch(session, "tron") == batch_id


async def test_the_round_after_a_cancel_reuses_the_canceling_nonce_not_the_pending_one(
    isolated_anvil: AnvilChain, sweep_ctx: Callable[..., Any]
) -> None:
    """Review 2, finding 4: a canceled request's signed bytes are in a mempool (the
    fee wallet's pending nonce is past it). The next round reuses its nonce, so at most
    one of the two can ever be mined (the pending nonce would pay twice)."""
    anvil = isolated_anvil
    account = _account()
    xpub = SEED.account_xpub(f"m/44'/60'/{account}'")
    sweeps = SweepSettings(rpc_url_ethereum=anvil.rpc_url, sweep_min_amount="10")
    ctx: GatewayContext = await sweep_ctx(anvil.assets_file, sweeps, evm_xpub=xpub)
    merchant = await _merchant(ctx)
    intent = await create_intent(ctx, merchant, network="ethereum")
    await _close_intents(ctx, [intent.id])
    fee_wallet = (await anvil.new_account(10**20)).lower()
    await anvil.transfer(anvil.usdt, intent.deposit_address.lower(), 500 * USDT)
    await anvil.mine(ctx.confirmations_for("ethereum"))
    targets = {
        "ethereum": SweepTargets(fresh_address().lower(), fee_wallet, f"m/44'/60'/{account}'/1/0")
    }
    (first,) = await _plan(ctx, "ethereum", targets)
    async with ctx.db.transaction() as session:
        await repository.issue_request(session, first.id, by="test")
        await repository.cancel_batch(session, first.id, by="usr_ops")
    [topup] = [t for t in await _transfers(ctx, first.id) if t.purpose == "fee_topup"]
    assert (topup.state, topup.nonce) == ("canceling", 0)

    await anvil.set_automine(False)
    await anvil.rpc("anvil_impersonateAccount", fee_wallet)
    await anvil.rpc(  # stands for the canceled top-up, broadcast out of band: pending
        "eth_sendTransaction",
        {"from": fee_wallet, "to": "0x000000000000000000000000000000000000dEaD", "value": "0x1"},
    )
    await anvil.rpc("anvil_stopImpersonatingAccount", fee_wallet)
    assert int(await anvil.rpc("eth_getTransactionCount", fee_wallet, "pending"), 16) == 1

    (second,) = await _plan(ctx, "ethereum", targets)
    [again] = [t for t in await _transfers(ctx, second.id) if t.purpose == "fee_topup"]
    assert again.nonce == 0
    sweep = next(t for t in await _transfers(ctx, second.id) if t.purpose == "sweep")
    assert sweep.nonce == 0  # the deposit address: nothing pending there
