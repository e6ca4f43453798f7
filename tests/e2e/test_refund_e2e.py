"""Refunds and payouts on the three devnets, through the running services (issue 15).

On each of Ethereum, BSC and Tron: an intent overpaid (12 for 10) is refunded its
overpayment, another paid exactly is refunded in two partial refunds, and a third refund
over the rest is refused; then the merchant's remaining balance is paid out. Each round
is planned by the ops API, signed by the real `stablegate-signer` CLI (its policy allows
refunds and payouts to any address, within limits) and uploaded; the gateway broadcasts,
the watchers track, the gateway confirms. Then: every customer's address holds exactly
what was refunded or paid out to it, the merchant got signed `refund.*`/`payout.*`
webhooks, the ledger's deposit accounts are at zero with no discrepancy open, and the
balance shows nothing available or reserved. A refund whose transaction reverts on chain
(the deposit address's tokens gone when it is mined) ends `failed`: the merchant is told,
the reserve is released and the amount is refundable again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from devnet.tron import TronDevnet
from tests.e2e.conftest import (
    BSC_RPC_TIMEOUT_SECONDS,
    RunningSuite,
    WebhookReceiver,
    _suite,
    verify_signature,
)
from tests.e2e.funds_out import (
    NETWORKS,
    Keys,
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
from tests.e2e.test_sweep_e2e import reconciled
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.tron import fresh_tron_account

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

BALANCE_SLOT = 3  # TestStablecoin: name, symbol, totalSupply, then balanceOf


@pytest.fixture(scope="module")
def keys() -> Keys:
    return new_keys()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def refunding(
    keys: Keys, anvil: AnvilChain, anvil_bsc: AnvilChain, tron_devnet: TronDevnet
) -> Any:
    env = {
        "gateway": {
            **gateway_env(keys, anvil, anvil_bsc, tron_devnet),
            "GATEWAY_DISBURSEMENT_SCHEDULE_MINUTES": "0",  # rounds on demand only
        },
        "watcher-bsc": {"WATCHER_RPC_TIMEOUT_SECONDS": BSC_RPC_TIMEOUT_SECONDS},
    }
    async with _suite(
        anvil, "test_refund_e2e", bsc=anvil_bsc, tron=tron_devnet, service_env=env
    ) as running:
        await fund_fee_wallets(keys, anvil, anvil_bsc, tron_devnet)
        yield running


def customer(network: str) -> str:
    return (
        fresh_tron_account().address if network == "tron" else to_checksum_address(fresh_address())
    )


async def pay(
    network: str, chains: dict[str, AnvilChain], tron: TronDevnet, to: str, amount: int
) -> None:
    if network == "tron":
        tron.transfer(0, to, amount)
    else:
        await chains[network].transfer(chains[network].usdt, to, amount)


async def token_balance(
    network: str, chains: dict[str, AnvilChain], tron: TronDevnet, address: str
) -> int:
    if network == "tron":
        return int(tron.token_balance("USDT", address))
    return int(await chains[network].balance_of(chains[network].usdt, address))


async def round_trip(
    suite: RunningSuite,
    keys: Keys,
    policies: dict[str, str],
    workdir: Path,
    networks: tuple[str, ...],
) -> list[dict[str, Any]]:
    """Plan the pending refunds or payouts of `networks`, sign each round with the CLI and
    upload it: the batches."""
    async with ops(suite, keys) as client:
        planned = await client.post("/ops/v1/disbursements/plan", json={})
        assert planned.status_code == 200, planned.text
        batches = [b for b in planned.json()["data"] if b["network"] in networks]
        assert sorted(b["network"] for b in batches) == sorted(networks), planned.json()
        for batch in batches:
            request = await client.post(f"/ops/v1/outgoing/batches/{batch['id']}/issue")
            assert request.status_code == 200, request.text
            signed = sign(workdir, keys, policies[batch["network"]], batch["id"], request.content)
            accepted = await client.post("/ops/v1/outgoing/signed_responses", content=signed)
            assert accepted.status_code == 200, accepted.text
    return batches


async def finished(suite: RunningSuite, keys: Keys, batches: list[dict[str, Any]]) -> bool:
    """Every transfer of every round terminal (Tron: the delegations taken back too), so
    the network is free for the next round."""
    async with ops(suite, keys) as client:
        for batch in batches:
            shown = (await client.get(f"/ops/v1/outgoing/batches/{batch['id']}")).json()
            if shown["status"] != "completed":
                return False
    return True


async def refund_of(suite: RunningSuite, kind: str, object_id: str) -> dict[str, Any]:
    async with suite.api() as api:
        response = await api.get(f"/v1/{kind}s/{object_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def all_in(suite: RunningSuite, kind: str, ids: list[str], status: str) -> bool:
    statuses = [(await refund_of(suite, kind, i))["status"] for i in ids]
    return all(s == status for s in statuses)


def policies_for(
    keys: Keys, anvil: AnvilChain, anvil_bsc: AnvilChain, tron: TronDevnet
) -> dict[str, str]:
    return {
        "ethereum": evm_policy(keys, "ethereum", anvil, "ETH"),
        "bsc": evm_policy(keys, "bsc", anvil_bsc, "BNB"),
        "tron": tron_policy(keys, tron),
    }


@pytest.mark.timeout(900)
async def test_refunds_and_a_payout_on_three_networks(
    refunding: RunningSuite,
    keys: Keys,
    anvil: AnvilChain,
    anvil_bsc: AnvilChain,
    tron_devnet: TronDevnet,
    webhook_receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    suite, tron = refunding, tron_devnet
    chains = {"ethereum": anvil, "bsc": anvil_bsc}
    policies = policies_for(keys, anvil, anvil_bsc, tron)
    async with suite.api() as api:
        endpoint = (
            await api.post("/v1/webhook_endpoints", json={"url": webhook_receiver.url})
        ).json()

    # Two intents a network: one overpaid 12 for 10, one paid 10.
    over: dict[str, dict[str, Any]] = {}
    exact: dict[str, dict[str, Any]] = {}
    for network in NETWORKS:
        over[network] = await create_intent(suite, amount="10.00", network=network)
        exact[network] = await create_intent(suite, amount="10.00", network=network)
        due = int(over[network]["amount_base_units"])
        await pay(network, chains, tron, over[network]["deposit_address"], due * 12 // 10)
        await pay(network, chains, tron, exact[network]["deposit_address"], due)
    async with mining(anvil, anvil_bsc):
        for network in NETWORKS:
            for intent in (over[network], exact[network]):

                async def settled(intent_id: str = intent["id"]) -> bool:
                    return (await get_intent(suite, intent_id))["status"] == "paid"

                await wait_for(settled, timeout=120, what=f"{network} {intent['id']} paid")

    # The refunds: the overpayment back, and two partials of the exact one; a third over
    # what is left is refused.
    customers = {n: (customer(n), customer(n), customer(n)) for n in NETWORKS}
    refund_ids: list[str] = []
    async with suite.api() as api:
        for network in NETWORKS:
            first, second, _ = customers[network]
            shown = await get_intent(suite, over[network]["id"])
            assert (shown["amount_refunded"], shown["amount_refundable"]) == ("0.00", "12.00")
            for body in (
                {"payment_intent": over[network]["id"], "amount": "2", "reason": "overpaid",
                 "destination_address": first},
                {"payment_intent": exact[network]["id"], "amount": "4",
                 "destination_address": second},
                {"payment_intent": exact[network]["id"], "amount": "6",
                 "destination_address": second},
            ):  # fmt: skip
                made = await api.post("/v1/refunds", json=body)
                assert made.status_code == 200, made.text
                refund_ids.append(made.json()["id"])
            third = await api.post(
                "/v1/refunds",
                json={"payment_intent": exact[network]["id"], "amount": "0.01",
                      "destination_address": second},
            )  # fmt: skip
            assert third.status_code == 400
            assert third.json()["error"]["code"] == "amount_exceeds_refundable"

    async with mining(anvil, anvil_bsc):
        rounds = await round_trip(suite, keys, policies, tmp_path / "refunds", NETWORKS)
        await wait_for(
            lambda: all_in(suite, "refund", refund_ids, "succeeded"),
            timeout=240,
            what="every refund succeeded",
        )
        await wait_for(
            lambda: finished(suite, keys, rounds), timeout=120, what="the refund rounds done"
        )
    for network in NETWORKS:
        first, second, _ = customers[network]
        decimals_unit = int(over[network]["amount_base_units"]) // 10
        assert await token_balance(network, chains, tron, first) == 2 * decimals_unit
        assert await token_balance(network, chains, tron, second) == 10 * decimals_unit
    for refund_id in refund_ids:
        refund = await refund_of(suite, "refund", refund_id)
        assert refund["tx_hash"]
        assert refund["source"] == "deposit_address"
        assert refund["network_fee"]["amount_base_units"] is not None

    # The payout: what is left of the merchant's balance (12 + 10 - 12), once the ledger
    # has booked the refunds.
    async def available(network: str) -> dict[str, Any] | None:
        async with suite.api() as api:
            balances = (await api.get("/v1/balances")).json()["data"]
        mine = [b for b in balances if b["network"] == network and b["asset"] == "USDT"]
        ten = str(int(over[network]["amount_base_units"]))
        return (
            mine[0]
            if mine
            and mine[0]["available_base_units"] == ten
            and mine[0]["reserved_base_units"] == "0"
            else None
        )

    payout_ids: list[str] = []
    async with suite.api() as api:
        for network in NETWORKS:
            await wait_for(lambda n=network: available(n), timeout=60, what=f"{network} balance 10")
            made = await api.post(
                "/v1/payouts",
                json={"amount": "10", "asset": "USDT", "network": network,
                      "destination_address": customers[network][2], "description": "settlement"},
            )  # fmt: skip
            assert made.status_code == 200, made.text
            payout_ids.append(made.json()["id"])
            more = await api.post(
                "/v1/payouts",
                json={"amount": "0.01", "asset": "USDT", "network": network,
                      "destination_address": customers[network][2]},
            )  # fmt: skip
            assert more.json()["error"]["code"] == "insufficient_balance"
    async with mining(anvil, anvil_bsc):
        await round_trip(suite, keys, policies, tmp_path / "payouts", NETWORKS)
        await wait_for(
            lambda: all_in(suite, "payout", payout_ids, "succeeded"),
            timeout=240,
            what="every payout succeeded",
        )
    for network in NETWORKS:
        ten = int(over[network]["amount_base_units"])
        assert await token_balance(network, chains, tron, customers[network][2]) == ten

    # Webhooks: one signed `created` and one `succeeded` per refund and payout.
    async def hooks() -> bool:
        succeeded = {
            w.event["data"]["object"]["id"] for w in webhook_receiver.of_type("refund.succeeded")
        }
        paid_out = {
            w.event["data"]["object"]["id"] for w in webhook_receiver.of_type("payout.succeeded")
        }
        return succeeded >= set(refund_ids) and paid_out >= set(payout_ids)

    await wait_for(hooks, timeout=60, what="refund and payout webhooks")
    for hook in webhook_receiver.received:
        if hook.event["type"].startswith(("refund.", "payout.")):
            assert verify_signature(
                endpoint["secret"], hook.headers["Stablegate-Signature"], hook.body
            )
    created = {w.event["data"]["object"]["id"] for w in webhook_receiver.of_type("refund.created")}
    assert created >= set(refund_ids)

    # The books: every deposit address empty in the ledger as on the chain, and nothing
    # available or reserved.
    deposits = {n: [over[n]["deposit_address"], exact[n]["deposit_address"]] for n in NETWORKS}
    for network in NETWORKS:
        for address in deposits[network]:
            assert await token_balance(network, chains, tron, address) == 0
    async with ops(suite, keys) as client:
        rows = (await client.get("/ops/v1/disbursements?limit=50")).json()["data"]
    transfers = {
        n: [
            {"block_number": t["block_number"]}
            for t in await _carriers(suite, [r["id"] for r in rows if r["network"] == n])
        ]
        for n in NETWORKS
    }
    await reconciled(suite, deposits, transfers)
    async with suite.api() as api:
        balances = (await api.get("/v1/balances")).json()["data"]
    assert {
        (b["network"], b["available_base_units"], b["reserved_base_units"]) for b in balances
    } == {(n, "0", "0") for n in NETWORKS}


async def _carriers(suite: RunningSuite, ids: list[str]) -> list[dict[str, Any]]:
    rows = await suite.query(
        "gateway",
        "SELECT block_number FROM outgoing_transfers WHERE reference = ANY($1::text[])"
        " AND state = 'confirmed'",
        ids,
    )
    return [dict(r) for r in rows]


def balance_slot(holder: str) -> str:
    key = (
        bytes(12)
        + bytes.fromhex(holder.lower().removeprefix("0x"))
        + BALANCE_SLOT.to_bytes(32, "big")
    )
    return "0x" + keccak(key).hex()


@pytest.mark.timeout(600)
async def test_a_refund_that_reverts_fails_and_releases_its_reserve(
    refunding: RunningSuite,
    keys: Keys,
    anvil: AnvilChain,
    anvil_bsc: AnvilChain,
    tron_devnet: TronDevnet,
    webhook_receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    suite = refunding
    async with suite.api() as api:
        await api.post("/v1/webhook_endpoints", json={"url": webhook_receiver.url})
    intent = await create_intent(suite, amount="5.00", network="ethereum")
    address = intent["deposit_address"]
    await anvil.transfer(anvil.usdt, address, int(intent["amount_base_units"]))
    async with mining(anvil):
        await wait_for(
            lambda: _status(suite, intent["id"], "paid"), timeout=120, what="intent paid"
        )
    async with suite.api() as api:
        made = await api.post(
            "/v1/refunds",
            json={"payment_intent": intent["id"], "destination_address": customer("ethereum")},
        )
    assert made.status_code == 200, made.text
    refund_id = made.json()["id"]
    policies = policies_for(keys, anvil, anvil_bsc, tron_devnet)
    slot = balance_slot(address)
    held = await anvil.rpc("eth_getStorageAt", anvil.usdt, slot, "latest")

    async with ops(suite, keys) as client, mining(anvil):
        planned = await client.post("/ops/v1/disbursements/plan", json={"network": "ethereum"})
        [batch] = planned.json()["data"]
        request = await client.post(f"/ops/v1/outgoing/batches/{batch['id']}/issue")
        signed = sign(tmp_path, keys, policies["ethereum"], batch["id"], request.content)
        # The deposit address's tokens are gone before the refund is mined: it reverts.
        await anvil.rpc("anvil_setStorageAt", anvil.usdt, slot, "0x" + "00" * 32)
        accepted = await client.post("/ops/v1/outgoing/signed_responses", content=signed)
        assert accepted.status_code == 200, accepted.text
        failed = await wait_for(
            lambda: _refund_status(suite, refund_id, "failed"), timeout=180, what="refund failed"
        )
        await anvil.rpc("anvil_setStorageAt", anvil.usdt, slot, held)
    assert failed["failure_reason"]
    assert failed["network_fee"]["amount_base_units"] not in (None, "0")  # the gas was burned
    shown = await get_intent(suite, intent["id"])
    assert (shown["amount_refunded"], shown["amount_refundable"]) == ("0.00", "5.00")

    async def told() -> bool:
        return any(
            w.event["data"]["object"]["id"] == refund_id
            for w in webhook_receiver.of_type("refund.failed")
        )

    await wait_for(told, timeout=60, what="refund.failed webhook")

    async def released() -> bool:
        rows = await suite.query(
            "reconciler",
            "SELECT balance_base_units FROM accounts WHERE code LIKE 'reserved:%'",
        )
        return all(int(r["balance_base_units"]) == 0 for r in rows)

    await wait_for(released, timeout=60, what="the reserve released")


async def _status(suite: RunningSuite, intent_id: str, status: str) -> bool:
    return (await get_intent(suite, intent_id))["status"] == status


async def _refund_status(suite: RunningSuite, refund_id: str, status: str) -> dict[str, Any] | None:
    refund = await refund_of(suite, "refund", refund_id)
    return refund if refund["status"] == status else None
