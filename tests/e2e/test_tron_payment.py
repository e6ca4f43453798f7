"""Payments on Tron through the whole suite: gateway, Ethereum and Tron watchers,
reconciler and dashboard as separate processes against PostgreSQL, RabbitMQ and the Tron
devnet (java-tron HTTP API, a block a second, solid 19 blocks below the head).

- a TRC-20 payment signed and broadcast with tronpy to the intent's base58 deposit
  address: confirming, then paid once its block is solidified, with the webhook, the
  balance, one ledger entry and a reconciliation that reads the Tron balance;
- a failed TRC-20 transfer (receipt not SUCCESS) and a look-alike token credit nothing;
- a fork before solidification takes the transfer back and the intent with it;
- the node going away and coming back: the watcher reports itself not ready, then
  catches up with nothing missed and nothing counted twice.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from devnet.tron import TronDevnet
from tests.e2e.conftest import RunningSuite, WebhookReceiver, verify_signature
from tests.e2e.test_bsc_payment import _is, _readyz
from tests.e2e.test_ethereum_payment import (
    create_intent,
    get_intent,
    ledger_entries,
    status_is,
    wait_for,
)
from tests.fixtures.tron_payments import block_of, funded_payer, pay_trc20

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def tron_intent(e2e: RunningSuite, amount: str, **extra: Any) -> dict[str, Any]:
    intent = await create_intent(e2e, amount=amount, network="tron", **extra)
    assert intent["deposit_address"].startswith("T")
    return intent


async def watcher_rows(e2e: RunningSuite, address: str) -> list[tuple[str, str]]:
    rows = await e2e.query(
        "watcher_tron",
        "SELECT tx_hash, status FROM observed_transfers WHERE to_address = $1 ORDER BY id",
        address,
    )
    return [(r["tx_hash"], r["status"]) for r in rows]


async def scanned_past(e2e: RunningSuite, block: int) -> bool:
    rows = await e2e.query("watcher_tron", "SELECT last_scanned_block FROM scan_cursor")
    return bool(rows) and int(rows[0]["last_scanned_block"]) >= block


async def test_a_tron_payment_goes_from_intent_to_webhook_ledger_and_balance(
    e2e_tron: RunningSuite, tron_devnet: TronDevnet, webhook_receiver: WebhookReceiver
) -> None:
    async with e2e_tron.api() as api:
        endpoint = (
            await api.post("/v1/webhook_endpoints", json={"url": webhook_receiver.url})
        ).json()
    intent = await tron_intent(e2e_tron, "25.00", reference="tron-order-1")
    deposit = intent["deposit_address"]
    assert intent["payment_uri"] == deposit  # no standard Tron URI: the bare address
    assert intent["token_contract"] == tron_devnet.tokens["USDT"]
    assert (intent["amount_base_units"], intent["decimals"]) == ("25000000", 6)
    assert intent["confirmations_required"] == 19

    payer = funded_payer(tron_devnet, usdt=30_000_000)
    txid = await pay_trc20(tron_devnet, payer, deposit, 25_000_000)
    confirming = await wait_for(
        lambda: status_is(e2e_tron, intent["id"], "confirming"), what="confirming"
    )
    [transfer] = confirming["transfers"]
    assert (transfer["tx_hash"], transfer["from_address"]) == (txid, payer.address)
    assert transfer["amount"] == "25.00"

    tron_devnet.mine(19)  # solidify the transfer's block without waiting 19 seconds
    paid = await wait_for(lambda: status_is(e2e_tron, intent["id"], "paid"), what="paid")
    assert (paid["amount_confirmed"], paid["amount_remaining"]) == ("25.00", "0.00")
    assert paid["transfers"][0]["status"] == "confirmed"

    async def paid_webhooks() -> Any:
        return [
            w
            for w in webhook_receiver.of_type("payment_intent.paid")
            if w.event["data"]["object"]["id"] == intent["id"]
        ]

    [hook] = await wait_for(paid_webhooks, what="paid webhook")
    assert verify_signature(endpoint["secret"], hook.headers["Stablegate-Signature"], hook.body)
    assert hook.event["data"]["object"]["deposit_address"] == deposit

    async def tron_balance() -> Any:
        async with e2e_tron.api() as api:
            data = (await api.get("/v1/balances")).json()["data"]
        return [b for b in data if (b["network"], b["asset"]) == ("tron", "USDT")]

    [balance] = await wait_for(tron_balance, what="tron balance")
    assert (balance["amount"], balance["amount_base_units"]) == ("25.00", "25000000")
    assert await ledger_entries(e2e_tron, intent["id"]) == 1
    await _reconciled(e2e_tron, deposit, after_block=block_of(tron_devnet, txid))


async def _reconciled(e2e: RunningSuite, deposit: str, *, after_block: int) -> None:
    """A reconciliation run read Tron balances past `after_block` and found the deposit
    address's chain balance equal to the ledger (no open discrepancy)."""

    async def checked() -> bool:
        runs = await e2e.query(
            "reconciler",
            "SELECT networks FROM reconciliation_runs WHERE status = 'completed'"
            " ORDER BY started_at DESC LIMIT 1",
        )
        if not runs:
            return False
        networks = runs[0]["networks"]
        # asyncpg hands JSONB over as text unless a codec is registered.
        tron = (json.loads(networks) if isinstance(networks, str) else networks).get("tron")
        return isinstance(tron, dict) and int(tron.get("block", -1)) >= after_block

    await wait_for(checked, timeout=60, what="a reconciliation run over Tron")

    async def clean() -> bool:
        # A run that read the solidified balance before the ledger booked the credit may
        # open a discrepancy; the next run over the same state must close it.
        open_rows = await e2e.query(
            "reconciler",
            "SELECT chain_base_units FROM discrepancies WHERE address = $1 AND status = 'open'",
            deposit,
        )
        return open_rows == []

    await wait_for(clean, timeout=90, what="no open discrepancy at the deposit address")


async def test_a_failed_transfer_and_a_look_alike_token_credit_nothing(
    e2e_tron: RunningSuite, tron_devnet: TronDevnet
) -> None:
    intent = await tron_intent(e2e_tron, "5.00")
    deposit = intent["deposit_address"]
    # Real signed transactions: one reverted (its receipt still lists the Transfer log),
    # one out of energy, and the look-alike "USDT" moving real balances of its own.
    tron_devnet.transfer(0, deposit, 5_000_000, fail="REVERT", keep_logs=True, mine=False)
    tron_devnet.transfer(0, deposit, 5_000_000, fail="OUT_OF_ENERGY", mine=False)
    tron_devnet.transfer(0, deposit, 5_000_000, token="LOOKALIKE", mine=False)
    [block] = tron_devnet.mine()
    tron_devnet.mine(20)

    await wait_for(lambda: scanned_past(e2e_tron, block + 20), what="watcher caught up")
    await asyncio.sleep(1)
    current = await get_intent(e2e_tron, intent["id"])
    assert (current["status"], current["amount_received"]) == ("awaiting_payment", "0.00")
    assert current["transfers"] == []
    assert await ledger_entries(e2e_tron, intent["id"]) == 0
    assert await watcher_rows(e2e_tron, deposit) == []  # nothing even recorded


async def test_a_fork_before_solidification_sends_the_intent_back(
    e2e_tron: RunningSuite, tron_devnet: TronDevnet
) -> None:
    intent = await tron_intent(e2e_tron, "7.00")
    deposit = intent["deposit_address"]
    sent = tron_devnet.transfer(0, deposit, 7_000_000)
    await wait_for(lambda: status_is(e2e_tron, intent["id"], "confirming"), what="confirming")

    tron_devnet.pause()  # no timer block between reading the head and forking
    try:
        depth = tron_devnet.head() - block_of(tron_devnet, sent.txid) + 1
        tron_devnet.fork(depth, "drop")  # the block holding the transfer is replaced
    finally:
        tron_devnet.resume()
    back = await wait_for(
        lambda: status_is(e2e_tron, intent["id"], "awaiting_payment"), what="back to awaiting"
    )
    assert back["amount_received"] == "0.00"
    assert [t["status"] for t in back["transfers"]] in ([], ["reverted"])

    tron_devnet.mine(20)  # the replacement blocks solidify without the transfer
    await wait_for(lambda: scanned_past(e2e_tron, tron_devnet.head()), what="caught up")
    await asyncio.sleep(1)
    assert (await get_intent(e2e_tron, intent["id"]))["status"] == "awaiting_payment"
    assert await ledger_entries(e2e_tron, intent["id"]) == 0
    assert await watcher_rows(e2e_tron, deposit) == [(sent.txid, "reverted")]


async def test_a_node_outage_makes_the_watcher_unready_then_it_catches_up(
    e2e_tron: RunningSuite, tron_devnet: TronDevnet
) -> None:
    watcher = e2e_tron.suite.url("watcher-tron")
    intent = await tron_intent(e2e_tron, "9.00")
    deposit = intent["deposit_address"]
    assert await _readyz(watcher) == 200

    tron_devnet.down("503")
    try:
        await wait_for(
            lambda: _is(_readyz(watcher), 503), timeout=20, what="tron watcher not ready"
        )
        # The chain moves on while nothing can read it: both payments land meanwhile.
        first = tron_devnet.transfer(0, deposit, 4_000_000)
        second = tron_devnet.transfer(1, deposit, 5_000_000)
        await asyncio.sleep(3)
        assert await _readyz(watcher) == 503
        assert await _readyz(e2e_tron.suite.url("watcher-eth")) == 200
    finally:
        tron_devnet.up()

    await wait_for(lambda: _is(_readyz(watcher), 200), timeout=60, what="ready again")
    tron_devnet.mine(19)
    paid = await wait_for(lambda: status_is(e2e_tron, intent["id"], "paid"), what="paid")
    await wait_for(lambda: _is(ledger_entries(e2e_tron, intent["id"]), 2), what="booked")
    await asyncio.sleep(2)  # time for any (wrong) second count to land
    again = await get_intent(e2e_tron, intent["id"])
    for current in (paid, again):
        assert current["amount_confirmed"] == "9.00"
        assert sorted(t["tx_hash"] for t in current["transfers"]) == sorted(
            [first.txid, second.txid]
        )
    assert await ledger_entries(e2e_tron, intent["id"]) == 2
    assert sorted(await watcher_rows(e2e_tron, deposit)) == sorted(
        [(first.txid, "confirmed"), (second.txid, "confirmed")]
    )
