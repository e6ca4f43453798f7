"""A whole sweep round on the three devnets, through the running services (issue 14).

20 intents are paid on each of Ethereum, BSC and Tron; the ops API plans a sweep, each
batch's signing request is signed by the real `stablegate-signer` CLI and uploaded; the
gateway's broadcaster sends the transactions (EVM: the fee wallet's gas top-ups first,
the sweeps after them; Tron: the fee wallet delegates its staked energy to each deposit
address, which sweeps on it, and takes it back), the watchers track them by hash and the
gateway confirms them. Then the chain is read: every deposit address holds no token, the
treasury holds the sum, the fee wallet spent exactly the top-ups plus the network fees the
transfers recorded, and the reconciler's ledger equals the chain. Then, on the same
stack: a reorg under a confirmed Ethereum sweep puts it back to broadcast, the same bytes
are sent and confirmed again and the ledger reverses and re-books it; and Tron with
GATEWAY_SWEEP_TRON_DELEGATION=never (the gateway restarted) tops up the TRX the sweeps
burn, to the sun.

The seed is a fresh random mnemonic (not the published test one: its EVM paths are
anvil's dev accounts), so every address here is this module's own.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from devnet.tron import TronDevnet
from tests.dashboard.support import sign_in
from tests.e2e.conftest import BSC_RPC_TIMEOUT_SECONDS, RunningSuite, _suite, create_user
from tests.e2e.funds_out import (
    NETWORKS,
    TRON_STAKE_SUN,
    Keys,
    batch_detail,
    evm_native,
    evm_policy,
    fund_fee_wallets,
    gateway_env,
    mining,
    new_keys,
    ops,
    sign,
    tron_policy,
)
from tests.e2e.test_ethereum_payment import create_intent, get_intent, wait_for
from tests.fixtures.anvil import AnvilChain
from tests.fixtures.hostile_rpc import HostileRpc

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

INTENTS_PER_NETWORK = 20


@pytest.fixture(scope="module")
def keys() -> Keys:
    return new_keys()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sweeping(
    keys: Keys, anvil: AnvilChain, anvil_bsc: AnvilChain, tron_devnet: TronDevnet
) -> AsyncIterator[RunningSuite]:
    env = {
        "gateway": gateway_env(keys, anvil, anvil_bsc, tron_devnet),
        "watcher-bsc": {"WATCHER_RPC_TIMEOUT_SECONDS": BSC_RPC_TIMEOUT_SECONDS},
    }
    async with _suite(
        anvil, "test_sweep_e2e", bsc=anvil_bsc, tron=tron_devnet, service_env=env
    ) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def funded(
    sweeping: RunningSuite,
    keys: Keys,
    anvil: AnvilChain,
    anvil_bsc: AnvilChain,
    tron_devnet: TronDevnet,
) -> RunningSuite:
    """The fee wallets funded (`funds_out.fund_fee_wallets`)."""
    await fund_fee_wallets(keys, anvil, anvil_bsc, tron_devnet)
    return sweeping


# --- helpers -----------------------------------------------------------------------------


async def pay_intents(
    suite: RunningSuite, anvil: AnvilChain, anvil_bsc: AnvilChain, tron: TronDevnet
) -> dict[str, list[dict[str, Any]]]:
    """20 intents per network, each paid in full and confirmed; by network."""
    intents: dict[str, list[dict[str, Any]]] = {n: [] for n in NETWORKS}
    for network in NETWORKS:
        for i in range(INTENTS_PER_NETWORK):
            amount = f"{5 + i}.25"
            intents[network].append(await create_intent(suite, amount=amount, network=network))
    for intent in intents["ethereum"]:
        await anvil.transfer(
            anvil.usdt, intent["deposit_address"], int(intent["amount_base_units"])
        )
    for intent in intents["bsc"]:
        await anvil_bsc.transfer(
            anvil_bsc.usdt, intent["deposit_address"], int(intent["amount_base_units"])
        )
    for intent in intents["tron"]:
        tron.transfer(0, intent["deposit_address"], int(intent["amount_base_units"]), mine=False)
    tron.mine()
    async with mining(anvil, anvil_bsc):
        for network in NETWORKS:
            for intent in intents[network]:

                async def paid(intent_id: str = intent["id"]) -> bool:
                    return bool((await get_intent(suite, intent_id))["status"] == "paid")

                await wait_for(paid, timeout=120, what=f"{network} intent {intent['id']} paid")
    return intents


# --- the test ------------------------------------------------------------------------------


@pytest.mark.timeout(1200)  # 60 payments, then about 160 transactions through every service
async def test_a_sweep_round_on_three_networks_empties_every_deposit_address(
    funded: RunningSuite,
    keys: Keys,
    anvil: AnvilChain,
    anvil_bsc: AnvilChain,
    tron_devnet: TronDevnet,
    tmp_path: Path,
) -> None:
    tron = tron_devnet
    sweeping = funded
    intents = await pay_intents(sweeping, anvil, anvil_bsc, tron)
    deposits = {n: [i["deposit_address"] for i in intents[n]] for n in NETWORKS}
    paid = {n: sum(int(i["amount_base_units"]) for i in intents[n]) for n in NETWORKS}
    chains = {"ethereum": anvil, "bsc": anvil_bsc}
    fee_before = {n: await evm_native(c, keys.evm_fee) for n, c in chains.items()}
    fee_before["tron"] = tron.trx_balance(keys.tron_fee)
    treasury_before = {
        "ethereum": await anvil.balance_of(anvil.usdt, keys.evm_treasury),
        "bsc": await anvil_bsc.balance_of(anvil_bsc.usdt, keys.evm_treasury),
        "tron": tron.token_balance("USDT", keys.tron_treasury),
    }
    assert treasury_before == dict.fromkeys(NETWORKS, 0)

    policies = {
        "ethereum": evm_policy(keys, "ethereum", anvil, "ETH"),
        "bsc": evm_policy(keys, "bsc", anvil_bsc, "BNB"),
        "tron": tron_policy(keys, tron),
    }
    async with ops(sweeping, keys) as client, mining(anvil, anvil_bsc):
        # The intents are settled, so their addresses are candidates; their confirmed
        # balances are read at the confirmation depth, which the miner has passed.
        planned = await client.post("/ops/v1/outgoing/sweeps", json={})
        assert planned.status_code == 200, planned.text
        batches = {b["network"]: b for b in planned.json()["data"]}
        assert sorted(batches) == sorted(NETWORKS), planned.json()
        for network, batch in batches.items():
            summary = batch["plan_summary"]
            assert int(summary["addresses"]) == INTENTS_PER_NETWORK, summary
            assert {k: int(v) for k, v in summary["totals"].items()} == {"USDT": paid[network]}, (
                summary
            )
        # Tron: every address swept on delegated energy (none left to TRX burning).
        tron_plan = await batch_detail(client, batches["tron"]["id"])
        purposes = [t["purpose"] for t in tron_plan["transfers"]]
        assert purposes.count("resource_delegation") == INTENTS_PER_NETWORK, purposes
        assert purposes.count("resource_undelegation") == INTENTS_PER_NETWORK
        assert purposes.count("sweep") == INTENTS_PER_NETWORK
        for network, batch in batches.items():
            issued = await client.post(f"/ops/v1/outgoing/batches/{batch['id']}/issue")
            assert issued.status_code == 200, issued.text
            signed = sign(tmp_path, keys, policies[network], batch["id"], issued.content)
            accepted = await client.post(
                "/ops/v1/outgoing/signed_responses",
                content=signed,
                headers={"Content-Type": "application/json"},
            )
            assert accepted.status_code == 200, accepted.text
            assert {t["state"] for t in accepted.json()["transfers"]} == {"signed"}

        async def all_confirmed() -> dict[str, list[dict[str, Any]]] | None:
            found = {
                n: (await batch_detail(client, b["id"]))["transfers"] for n, b in batches.items()
            }
            states = {t["state"] for ts in found.values() for t in ts}
            return found if states == {"confirmed"} else None

        transfers = await wait_for(all_confirmed, timeout=600, what="every transfer confirmed")

    # EVM: top-ups first, each sweep after its top-up, all confirmed.
    for network in ("ethereum", "bsc"):
        chain = chains[network]
        mine = transfers[network]
        topups = [t for t in mine if t["purpose"] == "fee_topup"]
        sweeps = [t for t in mine if t["purpose"] == "sweep"]
        assert len(sweeps) == len(topups) == INTENTS_PER_NETWORK
        by_id = {t["id"]: t for t in mine}
        for sweep in sweeps:
            topup = by_id[sweep["depends_on"]]
            assert topup["destination_address"].lower() == sweep["source_address"].lower()
            assert int(topup["block_number"]) < int(sweep["block_number"])
        # Every deposit address is empty of tokens; the treasury holds the sum.
        for address in deposits[network]:
            assert await chain.balance_of(chain.usdt, address) == 0, address
        assert await chain.balance_of(chain.usdt, keys.evm_treasury) == paid[network]
        # The fee wallet spent the top-ups and their gas, to the wei.
        spent = fee_before[network] - await evm_native(chain, keys.evm_fee)
        assert spent == sum(
            int(t["amount_base_units"]) + int(t["fee_paid_base_units"]) for t in topups
        )
        # What a deposit address keeps is its top-up less its sweep's gas (gas used x
        # effective price, as the receipt said).
        for sweep in sweeps:
            receipt = await chain.rpc("eth_getTransactionReceipt", sweep["tx_hash"])
            fee = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
            assert int(sweep["fee_paid_base_units"]) == fee
            left = await evm_native(chain, sweep["source_address"])
            assert left == int(by_id[sweep["depends_on"]]["amount_base_units"]) - fee

    # Tron: delegate → sweep → undelegate per address, activated by a 1-sun top-up.
    mine = transfers["tron"]
    for address in deposits["tron"]:
        assert tron.token_balance("USDT", address) == 0, address
    assert tron.token_balance("USDT", keys.tron_treasury) == paid["tron"]
    own = [t for t in mine if t["source_address"] == keys.tron_fee]
    topups = [t for t in own if t["purpose"] == "fee_topup"]
    spent = fee_before["tron"] - tron.trx_balance(keys.tron_fee)
    assert spent == sum(int(t["amount_base_units"]) for t in topups) + sum(
        int(t["fee_paid_base_units"]) for t in own
    )
    for sweep in (t for t in mine if t["purpose"] == "sweep"):
        info = await tron_info(tron, sweep["tx_hash"])
        assert int(sweep["fee_paid_base_units"]) == int(info.get("fee", 0))
        assert "energy_fee" not in info["receipt"], info  # paid by the delegated energy
        topup = next(t for t in topups if t["destination_address"] == sweep["source_address"])
        left = tron.trx_balance(sweep["source_address"])
        assert left == int(topup["amount_base_units"]) - int(sweep["fee_paid_base_units"])
    # On delegated energy an address needs no TRX of its own: the top-up only activates it.
    assert {int(t["amount_base_units"]) for t in topups} == {1}, topups
    # Every delegation was taken back; the stake itself stays frozen in the fee wallet.
    account = await tron_call(tron, "wallet/getaccount", keys.tron_fee)
    assert "delegated_frozenV2_balance_for_energy" not in account["account_resource"], account
    assert {"type": "ENERGY", "amount": TRON_STAKE_SUN} in account["frozenV2"], account
    for address in deposits["tron"]:
        held = await tron_call(tron, "wallet/getaccount", address)
        assert "acquired_delegated_frozenV2_balance_for_energy" not in held["account_resource"]

    await reconciled(sweeping, deposits, transfers)


async def tron_call(tron: TronDevnet, path: str, address: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=tron.url, timeout=10) as http:
        response = await http.post(path, json={"address": address, "visible": True})
    answer: dict[str, Any] = response.json()
    return answer


async def tron_info(tron: TronDevnet, txid: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=tron.url, timeout=10) as http:
        response = await http.post("wallet/gettransactioninfobyid", json={"value": txid})
    answer: dict[str, Any] = response.json()
    assert answer, f"{txid} is not in a block"
    return answer


async def reconciled(
    suite: RunningSuite,
    deposits: dict[str, list[str]],
    transfers: dict[str, list[dict[str, Any]]],
) -> None:
    """The ledger says what the chain says: once every deposit address's USDT account in
    the reconciler's ledger is zero, a reconciliation run that started after that, over
    blocks past the last sweep, finds no discrepancy open at any of them."""
    last = {n: max(int(t["block_number"]) for t in ts) for n, ts in transfers.items()}
    addresses = [a.lower() for ds in deposits.values() for a in ds]

    async def emptied() -> list[Any] | None:
        # The ledger books a confirmed sweep when its announcement arrives, which may be
        # just after the gateway shows it confirmed.
        accounts = await suite.query(
            "reconciler",
            "SELECT network, address, balance_base_units FROM accounts"
            " WHERE kind = 'asset' AND asset = 'USDT' AND lower(address) = ANY($1::text[])",
            addresses,
        )
        zero = {int(a["balance_base_units"]) for a in accounts} == {0}
        return accounts if zero and len(accounts) == len(addresses) else None

    await wait_for(emptied, timeout=60, what="the ledger's deposit accounts at zero")
    [since] = await suite.query("reconciler", "SELECT now() AS at")

    async def run_past() -> bool:
        runs = await suite.query(
            "reconciler",
            "SELECT networks FROM reconciliation_runs WHERE status = 'completed'"
            " AND started_at > $1 ORDER BY started_at DESC LIMIT 1",
            since["at"],
        )
        if not runs:
            return False
        networks = runs[0]["networks"]
        networks = json.loads(networks) if isinstance(networks, str) else networks
        return all(int((networks.get(n) or {}).get("block", -1)) >= b for n, b in last.items())

    await wait_for(run_past, timeout=120, what="a reconciliation run past the sweeps")
    open_rows = await suite.query(
        "reconciler",
        "SELECT network, address, ledger_base_units, chain_base_units FROM discrepancies"
        " WHERE status = 'open' AND lower(address) = ANY($1)",
        addresses,
    )
    assert open_rows == []


# --- a reorg under a confirmed sweep -------------------------------------------------------


async def transfer_states(suite: RunningSuite, transfer_id: str) -> list[str]:
    """The states the gateway announced for one outgoing transfer, in order."""
    rows = await suite.query(
        "gateway",
        "SELECT body FROM outbox WHERE routing_key = 'outgoing.transfer.updated'"
        " AND body->'data'->>'transfer_id' = $1 ORDER BY id",
        transfer_id,
    )
    bodies = [json.loads(r["body"]) if isinstance(r["body"], str) else r["body"] for r in rows]
    return [str(b["data"]["state"]) for b in bodies]


@pytest.mark.timeout(600)
async def test_a_reorg_under_a_confirmed_sweep_sends_the_same_bytes_again(
    funded: RunningSuite, keys: Keys, anvil: AnvilChain, tmp_path: Path
) -> None:
    suite = funded
    intent = await create_intent(suite, amount="12.50", network="ethereum")
    deposit, amount = intent["deposit_address"], int(intent["amount_base_units"])
    await anvil.transfer(anvil.usdt, deposit, amount)
    async with mining(anvil):

        async def paid() -> bool:
            return bool((await get_intent(suite, intent["id"]))["status"] == "paid")

        await wait_for(paid, timeout=120, what="the intent paid")
    treasury_before = await anvil.balance_of(anvil.usdt, keys.evm_treasury)

    async with ops(suite, keys) as client:

        async def planned() -> list[dict[str, Any]] | None:
            # An earlier round in this module may still be finishing (one per network).
            response = await client.post("/ops/v1/outgoing/sweeps", json={"network": "ethereum"})
            assert response.status_code == 200, response.text
            data: list[dict[str, Any]] = response.json()["data"]
            return data or None

        async with mining(anvil):  # the payment's balance is read at the confirmation depth
            [batch] = await wait_for(planned, timeout=60, what="an Ethereum sweep planned")
        issued = await client.post(f"/ops/v1/outgoing/batches/{batch['id']}/issue")
        assert issued.status_code == 200, issued.text
        policy = evm_policy(keys, "ethereum", anvil, "ETH")
        signed = sign(tmp_path, keys, policy, batch["id"], issued.content)
        accepted = await client.post(
            "/ops/v1/outgoing/signed_responses",
            content=signed,
            headers={"Content-Type": "application/json"},
        )
        assert accepted.status_code == 200, accepted.text
        topup, sweep = sorted(
            accepted.json()["transfers"], key=lambda t: t["purpose"] != "fee_topup"
        )
        assert (topup["purpose"], sweep["purpose"]) == ("fee_topup", "sweep")
        assert sweep["source_address"].lower() == deposit.lower()

        async def state_of(transfer_id: str, wanted: str) -> dict[str, Any] | None:
            detail = await batch_detail(client, batch["id"])
            found = next(t for t in detail["transfers"] if t["id"] == transfer_id)
            return found if found["state"] == wanted else None

        # Slowly (well inside the watcher's 64-block reorg window), until it is confirmed.
        async with mining(anvil, every=1.0):
            first = await wait_for(
                lambda: state_of(sweep["id"], "confirmed"), timeout=180, what="sweep confirmed"
            )
        raw = await anvil.rpc("eth_getRawTransactionByHash", first["tx_hash"])
        receipt = await anvil.rpc("eth_getTransactionReceipt", first["tx_hash"])
        head, sweep_block = await anvil.block_number(), int(first["block_number"])
        depth = head - sweep_block + 1
        topup_block = int((await state_of(topup["id"], "confirmed") or {})["block_number"])
        assert topup_block < sweep_block  # the reorg leaves the top-up where it is

        await anvil.reorg(depth)  # the sweep's block and those above it are replaced
        assert await anvil.rpc("eth_getTransactionReceipt", first["tx_hash"]) is None

        # The watcher reports it reorged, the gateway puts it back to broadcast, and the
        # broadcaster sends the same bytes again (anvil mines them at once).
        async def resent() -> bool:
            again = await anvil.rpc("eth_getTransactionReceipt", first["tx_hash"])
            return again is not None

        await wait_for(resent, timeout=90, what="the sweep sent and mined again")
        async with mining(anvil, every=1.0):
            second = await wait_for(
                lambda: state_of(sweep["id"], "confirmed"),
                timeout=180,
                what="sweep confirmed again",
            )

    assert second["tx_hash"] == first["tx_hash"]
    assert second["broadcast_attempts"] > first["broadcast_attempts"]
    assert await anvil.rpc("eth_getRawTransactionByHash", first["tx_hash"]) == raw
    mined_again = await anvil.rpc("eth_getTransactionReceipt", first["tx_hash"])
    assert mined_again["blockHash"] != receipt["blockHash"]
    assert int(second["block_number"]) == int(mined_again["blockNumber"], 16)
    # confirmed → broadcast (reorged out) → … → confirmed, and nothing else in between.
    states = await transfer_states(suite, sweep["id"])
    assert states.count("confirmed") == 2, states
    after = states[states.index("confirmed") + 1 :]
    assert (after[0], after[-1]) == ("broadcast", "confirmed"), states
    assert set(after) == {"broadcast", "confirmed"}, states
    # One sweep, moved once; the money is where it belongs.
    assert await anvil.balance_of(anvil.usdt, deposit) == 0
    assert await anvil.balance_of(anvil.usdt, keys.evm_treasury) == treasury_before + amount
    fee = int(mined_again["gasUsed"], 16) * int(mined_again["effectiveGasPrice"], 16)
    assert int(second["fee_paid_base_units"]) == fee

    # The ledger took the sweep back when it left the chain and booked it again.
    entries = await suite.query(
        "reconciler",
        "SELECT kind FROM journal_entries WHERE transfer_id = $1 ORDER BY created_at, id",
        sweep["id"],
    )
    kinds = [e["kind"] for e in entries]
    assert kinds.count("outgoing_reversal") >= 1, kinds
    await reconciled(suite, {"ethereum": [deposit]}, {"ethereum": [second]})


# --- Tron without delegation: the fee wallet tops up the TRX a sweep burns ---------------


async def restart_gateway(suite: RunningSuite, **env: str) -> None:
    spec = suite.suite.spec("gateway")
    spec.env.update(env)

    def restart() -> None:
        if "gateway" in suite.suite.running:  # a test may have killed it
            suite.suite.stop("gateway")
        suite.suite.start("gateway")
        suite.suite.wait_ready(timeout=60, names=["gateway"])

    await asyncio.to_thread(restart)


@pytest.mark.timeout(600)
async def test_tron_without_delegation_tops_up_the_trx_its_sweeps_burn(
    funded: RunningSuite, keys: Keys, tron_devnet: TronDevnet, tmp_path: Path
) -> None:
    suite, tron, count = funded, tron_devnet, 3
    await restart_gateway(suite, GATEWAY_SWEEP_TRON_DELEGATION="never")
    try:
        intents = [
            await create_intent(suite, amount=f"{30 + i}.00", network="tron") for i in range(count)
        ]
        for intent in intents:
            tron.transfer(
                0, intent["deposit_address"], int(intent["amount_base_units"]), mine=False
            )
        tron.mine()
        for intent in intents:

            async def paid(intent_id: str = intent["id"]) -> bool:
                return bool((await get_intent(suite, intent_id))["status"] == "paid")

            await wait_for(paid, timeout=120, what=f"tron intent {intent['id']} paid")
        deposits = [i["deposit_address"] for i in intents]
        total = sum(int(i["amount_base_units"]) for i in intents)
        treasury_before = tron.token_balance("USDT", keys.tron_treasury)
        fee_before = tron.trx_balance(keys.tron_fee)

        async with ops(suite, keys) as client:

            async def planned() -> list[dict[str, Any]] | None:
                response = await client.post("/ops/v1/outgoing/sweeps", json={"network": "tron"})
                assert response.status_code == 200, response.text
                data: list[dict[str, Any]] = response.json()["data"]
                return data or None

            [batch] = await wait_for(planned, timeout=60, what="a Tron sweep planned")
            plan = await batch_detail(client, batch["id"])
            assert sorted(t["purpose"] for t in plan["transfers"]) == sorted(
                ["fee_topup", "sweep"] * count
            ), plan["transfers"]
            issued = await client.post(f"/ops/v1/outgoing/batches/{batch['id']}/issue")
            assert issued.status_code == 200, issued.text
            signed = sign(tmp_path, keys, tron_policy(keys, tron), batch["id"], issued.content)
            accepted = await client.post(
                "/ops/v1/outgoing/signed_responses",
                content=signed,
                headers={"Content-Type": "application/json"},
            )
            assert accepted.status_code == 200, accepted.text

            async def confirmed() -> list[dict[str, Any]] | None:
                found: list[dict[str, Any]] = (await batch_detail(client, batch["id"]))["transfers"]
                return found if {t["state"] for t in found} == {"confirmed"} else None

            transfers = await wait_for(confirmed, timeout=300, what="the Tron sweep confirmed")
    finally:
        await restart_gateway(suite, GATEWAY_SWEEP_TRON_DELEGATION="auto")

    for address in deposits:
        assert tron.token_balance("USDT", address) == 0, address
    assert tron.token_balance("USDT", keys.tron_treasury) == treasury_before + total
    topups = {t["destination_address"]: t for t in transfers if t["purpose"] == "fee_topup"}
    # The fee wallet spent the top-ups and their fees (the accounts' creation), to the sun.
    spent = fee_before - tron.trx_balance(keys.tron_fee)
    assert spent == sum(
        int(t["amount_base_units"]) + int(t["fee_paid_base_units"]) for t in topups.values()
    )
    for sweep in (t for t in transfers if t["purpose"] == "sweep"):
        info = await tron_info(tron, sweep["tx_hash"])
        assert int(info["receipt"]["energy_fee"]) > 0, info  # the energy was burnt TRX
        assert int(sweep["fee_paid_base_units"]) == int(info["fee"])
        topup = topups[sweep["source_address"]]
        assert int(topup["amount_base_units"]) >= int(info["fee"])  # the fee_limit's worth
        left = tron.trx_balance(sweep["source_address"])
        assert left == int(topup["amount_base_units"]) - int(info["fee"])
    await reconciled(suite, {"tron": deposits}, {"tron": transfers})


# --- the broadcasting process killed around the send ----------------------------------------


async def outgoing_rows(suite: RunningSuite, batch_id: str) -> list[dict[str, Any]]:
    rows = await suite.query(
        "gateway",
        "SELECT id, purpose, state, tx_hash, broadcast_attempts FROM outgoing_transfers"
        " WHERE batch_id = $1 ORDER BY seq",
        batch_id,
    )
    return [dict(r) for r in rows]


async def nonce_of(chain: AnvilChain, address: str, block: str = "latest") -> int:
    return int(await chain.rpc("eth_getTransactionCount", address, block), 16)


def kill(suite: RunningSuite, name: str) -> None:
    suite.suite.stop(name, kill=True)


def start(suite: RunningSuite, name: str) -> None:
    suite.suite.start(name)
    suite.suite.wait_ready(timeout=60, names=[name])


@pytest.mark.timeout(600)
async def test_the_broadcaster_killed_before_and_after_the_send_sends_nothing_twice(
    funded: RunningSuite, keys: Keys, anvil: AnvilChain, tmp_path: Path
) -> None:
    """SIGKILL (1) after the signed transactions are stored and before any is sent (the
    node unreachable), (2) after the top-ups are sent and before their receipts are
    recorded (anvil not mining). Restarted, the gateway sends only the same bytes again:
    the fee wallet's nonce moves once per top-up, every transfer is mined under its
    stored hash, and the sweep completes to the base unit."""
    suite, count = funded, 2
    node = HostileRpc(anvil.rpc_url, name="gateway-node")
    await node.start()
    await restart_gateway(suite, GATEWAY_RPC_URL_ETHEREUM=node.url)
    try:
        intents = [
            await create_intent(suite, amount=f"{40 + i}.00", network="ethereum")
            for i in range(count)
        ]
        for intent in intents:
            await anvil.transfer(
                anvil.usdt, intent["deposit_address"], int(intent["amount_base_units"])
            )
        async with mining(anvil):
            for intent in intents:

                async def paid(intent_id: str = intent["id"]) -> bool:
                    return bool((await get_intent(suite, intent_id))["status"] == "paid")

                await wait_for(paid, timeout=120, what=f"intent {intent['id']} paid")
        deposits = [i["deposit_address"] for i in intents]
        total = sum(int(i["amount_base_units"]) for i in intents)
        treasury_before = await anvil.balance_of(anvil.usdt, keys.evm_treasury)
        fee_before = await evm_native(anvil, keys.evm_fee)
        nonce_before = await nonce_of(anvil, keys.evm_fee)

        async with ops(suite, keys) as client:

            async def planned() -> list[dict[str, Any]] | None:
                response = await client.post(
                    "/ops/v1/outgoing/sweeps", json={"network": "ethereum"}
                )
                assert response.status_code == 200, response.text
                data: list[dict[str, Any]] = response.json()["data"]
                return data or None

            async with mining(anvil):
                [batch] = await wait_for(planned, timeout=60, what="an Ethereum sweep planned")
            issued = await client.post(f"/ops/v1/outgoing/batches/{batch['id']}/issue")
            assert issued.status_code == 200, issued.text
            policy = evm_policy(keys, "ethereum", anvil, "ETH")
            signed = sign(tmp_path, keys, policy, batch["id"], issued.content)

            # 1. Stored, not sent: the broadcaster's node is down when the file arrives.
            node.failing = "down"
            accepted = await client.post(
                "/ops/v1/outgoing/signed_responses",
                content=signed,
                headers={"Content-Type": "application/json"},
            )
            assert accepted.status_code == 200, accepted.text
            hashes = {t["id"]: t["tx_hash"] for t in accepted.json()["transfers"]}
            assert all(hashes.values())  # every hash is known before anything is sent
            failures = node.failures

            async def tried() -> bool:
                return node.failures > failures + 1

            await wait_for(tried, timeout=60, what="the broadcaster trying the dead node")
        await asyncio.to_thread(kill, suite, "gateway")
        # Nothing reached the chain. A top-up may show `broadcast` (the attempt is recorded
        # before the send), its sweep waits `signed` for it; every hash as stored.
        rows = await outgoing_rows(suite, batch["id"])
        assert {r["state"] for r in rows if r["purpose"] == "sweep"} == {"signed"}, rows
        assert {r["state"] for r in rows} <= {"signed", "broadcast"}, rows
        assert {r["id"]: r["tx_hash"] for r in rows} == hashes
        assert await nonce_of(anvil, keys.evm_fee, "pending") == nonce_before

        # 2. Sent, receipts not recorded: anvil holds the top-ups in its pool.
        node.behave()
        await anvil.set_automine(False)
        sends = node.calls["eth_sendRawTransaction"]
        await asyncio.to_thread(start, suite, "gateway")

        async def topups_sent() -> bool:
            return await nonce_of(anvil, keys.evm_fee, "pending") == nonce_before + count

        await wait_for(topups_sent, timeout=60, what="the top-ups in anvil's pool")
        await asyncio.to_thread(kill, suite, "gateway")
        assert node.calls["eth_sendRawTransaction"] - sends >= count
        rows = await outgoing_rows(suite, batch["id"])
        assert (
            sorted(r["state"] for r in rows if r["purpose"] == "fee_topup") == ["broadcast"] * count
        ), rows
        await anvil.set_automine(True)
        await anvil.mine(1)  # the top-ups are mined while nobody records them
        await asyncio.to_thread(start, suite, "gateway")

        async with ops(suite, keys) as client, mining(anvil):

            async def confirmed() -> list[dict[str, Any]] | None:
                found: list[dict[str, Any]] = (await batch_detail(client, batch["id"]))["transfers"]
                return found if {t["state"] for t in found} == {"confirmed"} else None

            transfers = await wait_for(confirmed, timeout=300, what="the sweep confirmed")
    finally:
        await anvil.set_automine(True)
        await restart_gateway(suite, GATEWAY_RPC_URL_ETHEREUM=anvil.rpc_url)
        await node.close()

    # Each transfer was mined once, under the hash stored before its first send.
    assert {t["id"]: t["tx_hash"] for t in transfers} == hashes
    for t in transfers:
        receipt = await anvil.rpc("eth_getTransactionReceipt", t["tx_hash"])
        assert receipt is not None
        assert int(receipt["status"], 16) == 1
    topups = [t for t in transfers if t["purpose"] == "fee_topup"]
    assert await nonce_of(anvil, keys.evm_fee) == nonce_before + len(topups)
    for address in deposits:
        assert await anvil.balance_of(anvil.usdt, address) == 0, address
    assert await anvil.balance_of(anvil.usdt, keys.evm_treasury) == treasury_before + total
    spent = fee_before - await evm_native(anvil, keys.evm_fee)
    assert spent == sum(int(t["amount_base_units"]) + int(t["fee_paid_base_units"]) for t in topups)
    await reconciled(suite, {"ethereum": deposits}, {"ethereum": transfers})


# --- a round through the dashboard's Outgoing page, against the real ops API ---------------

DASHBOARD_ADMIN = "sweeps-admin@stablegate.test"


def hidden_fields(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to `action`, as a browser sends them."""
    start = html.index(f'action="{action}"')
    form = html[start : html.index("</form>", start)]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))


@pytest.mark.timeout(600)
async def test_an_admin_runs_a_bsc_round_from_the_outgoing_page(
    funded: RunningSuite, keys: Keys, anvil_bsc: AnvilChain, tmp_path: Path
) -> None:
    """Plan, download the request, upload the signed file: each through the dashboard,
    which acts through the gateway's ops API with its own token."""
    suite = funded
    suite.suite.spec("dashboard").env.update(
        {
            "DASHBOARD_GATEWAY_URL": suite.gateway,
            "DASHBOARD_GATEWAY_API_KEY": suite.secret_key,
            "DASHBOARD_GATEWAY_OPS_TOKEN": keys.ops_token,
        }
    )

    def restart() -> None:
        suite.suite.stop("dashboard")
        suite.suite.start("dashboard")
        suite.suite.wait_ready(timeout=60, names=["dashboard"])

    await asyncio.to_thread(restart)
    await create_user(suite, DASHBOARD_ADMIN, "admin")
    intent = await create_intent(suite, amount="17.75", network="bsc")
    deposit, amount = intent["deposit_address"], int(intent["amount_base_units"])
    await anvil_bsc.transfer(anvil_bsc.usdt, deposit, amount)
    async with mining(anvil_bsc):

        async def paid() -> bool:
            return bool((await get_intent(suite, intent["id"]))["status"] == "paid")

        await wait_for(paid, timeout=120, what="the BSC intent paid")
    treasury_before = await anvil_bsc.balance_of(anvil_bsc.usdt, keys.evm_treasury)

    async with httpx.AsyncClient(base_url=suite.dashboard, timeout=30) as admin:
        signed_in = await sign_in(admin, DASHBOARD_ADMIN)
        assert signed_in.status_code == 303, signed_in.text[:500]

        async def planned() -> str | None:
            page = await admin.get("/outgoing")
            assert page.status_code == 200, page.text[:500]
            fields = hidden_fields(page.text, "/outgoing/sweeps")
            response = await admin.post("/outgoing/sweeps", data={**fields, "network": "bsc"})
            assert response.status_code == 303, response.text[:500]
            target = response.headers["location"].split("?")[0]
            return target if target.startswith("/outgoing/ob_") else None

        async with mining(anvil_bsc):  # an earlier BSC round may still be confirming
            batch_path = await wait_for(planned, timeout=90, what="a BSC sweep planned")
        batch_id = batch_path.rsplit("/", 1)[1]
        page = await admin.get(batch_path)
        assert page.status_code == 200
        assert deposit.lower() in page.text.lower()
        download = await admin.post(
            f"{batch_path}/request", data=hidden_fields(page.text, f"{batch_path}/request")
        )
        assert download.status_code == 200, download.text[:500]
        assert "attachment" in download.headers["content-disposition"]
        async with ops(suite, keys) as client:  # the same bytes the gateway stored
            again = await client.post(f"/ops/v1/outgoing/batches/{batch_id}/issue")
            assert again.content == download.content
        policy = evm_policy(keys, "bsc", anvil_bsc, "BNB")
        signed = sign(tmp_path, keys, policy, batch_id, download.content)
        page = await admin.get(batch_path)
        uploaded = await admin.post(
            "/outgoing/signed",
            data=hidden_fields(page.text, "/outgoing/signed"),
            files={"signed_file": ("SIGNED.json", signed, "application/json")},
        )
        assert uploaded.status_code == 303, uploaded.text[:500]
        assert "signed_accepted" in uploaded.headers["location"]

        async with ops(suite, keys) as client, mining(anvil_bsc):

            async def confirmed() -> list[dict[str, Any]] | None:
                found: list[dict[str, Any]] = (await batch_detail(client, batch_id))["transfers"]
                return found if {t["state"] for t in found} == {"confirmed"} else None

            transfers = await wait_for(confirmed, timeout=300, what="the BSC round confirmed")
        shown = await admin.get(batch_path)
        assert "confirmed" in shown.text

    assert await anvil_bsc.balance_of(anvil_bsc.usdt, deposit) == 0
    assert await anvil_bsc.balance_of(anvil_bsc.usdt, keys.evm_treasury) == (
        treasury_before + amount
    )
    await reconciled(suite, {"bsc": [deposit]}, {"bsc": transfers})
