"""One real payment through the whole suite on Ethereum (anvil), and the ways it must not
go wrong: duplicates, rescans after a crash, reorgs, look-alike tokens and zero-value
"address poisoning" transfers.

Gateway, watcher, reconciler and dashboard run as separate processes, in their own
schemas, on a RabbitMQ exchange of their own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import pytest

from tests.conftest import RABBITMQ_URL
from tests.e2e.conftest import RunningSuite, WebhookReceiver, verify_signature
from tests.fixtures.anvil import AnvilChain

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def wait_for(
    probe: Callable[[], Awaitable[Any]], *, timeout: float = 30.0, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


async def create_intent(e2e: RunningSuite, amount: str = "25.00", **extra: Any) -> dict[str, Any]:
    async with e2e.api() as api:
        response = await api.post(
            "/v1/payment_intents",
            json={"amount": amount, "currency": "USDT", "network": "ethereum", **extra},
        )
    assert response.status_code == 200, response.text
    intent: dict[str, Any] = response.json()
    return intent


async def get_intent(e2e: RunningSuite, intent_id: str) -> dict[str, Any]:
    async with e2e.api() as api:
        response = await api.get(f"/v1/payment_intents/{intent_id}")
    assert response.status_code == 200, response.text
    intent: dict[str, Any] = response.json()
    return intent


async def status_is(e2e: RunningSuite, intent_id: str, status: str) -> dict[str, Any] | None:
    intent = await get_intent(e2e, intent_id)
    return intent if intent["status"] == status else None


async def ledger_entries(e2e: RunningSuite, intent_id: str) -> int:
    rows = await e2e.query(
        "reconciler", "SELECT count(*) AS n FROM journal_entries WHERE intent_id = $1", intent_id
    )
    return int(rows[0]["n"])


async def pay_and_confirm(anvil: AnvilChain, to: str, amount: int, confirmations: int) -> str:
    tx_hash = await anvil.transfer(anvil.usdt, to, amount)
    await anvil.mine(confirmations - 1)
    return tx_hash


async def test_a_payment_goes_from_intent_to_webhook_ledger_and_dashboard(
    e2e: RunningSuite, anvil: AnvilChain, webhook_receiver: WebhookReceiver
) -> None:
    async with e2e.api() as api:
        endpoint = (
            await api.post("/v1/webhook_endpoints", json={"url": webhook_receiver.url})
        ).json()
    secret = endpoint["secret"]
    assert secret.startswith("whsec_")

    intent = await create_intent(e2e, reference="order-1001")
    assert intent["status"] == "awaiting_payment"
    assert intent["amount_base_units"] == "25000000"
    assert intent["token_contract"].lower() == anvil.usdt.lower()

    tx_hash = await anvil.transfer(anvil.usdt, intent["deposit_address"], 25_000_000)
    confirming = await wait_for(
        lambda: status_is(e2e, intent["id"], "confirming"), what="confirming"
    )
    assert confirming["transfers"][0]["tx_hash"] == tx_hash
    await anvil.mine(intent["confirmations_required"] - 1)
    paid = await wait_for(lambda: status_is(e2e, intent["id"], "paid"), what="paid")
    assert paid["amount_confirmed"] == "25.00"
    assert paid["amount_remaining"] == "0.00"
    assert paid["transfers"][0]["status"] == "confirmed"

    def paid_webhook() -> Any:
        return [
            w
            for w in webhook_receiver.of_type("payment_intent.paid")
            if w.event["data"]["object"]["id"] == intent["id"]
        ]

    async def paid_webhooks() -> Any:
        return paid_webhook()

    hooks = await wait_for(paid_webhooks, what="paid webhook")
    hook = hooks[0]
    assert verify_signature(secret, hook.headers["Stablegate-Signature"], hook.body)
    assert not verify_signature("whsec_wrong", hook.headers["Stablegate-Signature"], hook.body)
    assert hook.event["data"]["object"]["status"] == "paid"

    async def balance() -> Any:
        async with e2e.api() as api:
            data = (await api.get("/v1/balances")).json()["data"]
        return [b for b in data if b["network"] == "ethereum" and b["asset"] == "USDT"]

    balances = await wait_for(balance, what="balance")
    assert balances[0]["amount"] == "25.00"
    assert balances[0]["amount_base_units"] == "25000000"
    assert await ledger_entries(e2e, intent["id"]) == 1

    async def dashboard_shows_paid() -> Any:
        rows = await e2e.query(
            "dashboard", "SELECT status FROM intents WHERE id = $1", intent["id"]
        )
        return bool(rows) and rows[0]["status"] == "paid"

    await wait_for(dashboard_shows_paid, what="the intent paid in the dashboard's read model")


async def test_duplicates_and_rescans_after_a_crash_credit_once(
    e2e: RunningSuite, anvil: AnvilChain
) -> None:
    # A tap on the exchange keeps a copy of every transfer event, to deliver one twice.
    connection = await aio_pika.connect(RABBITMQ_URL)
    channel = await connection.channel()
    exchange = await channel.get_exchange(e2e.exchange)
    tap = await channel.declare_queue(exclusive=True)
    await tap.bind(exchange, "transfer.#")

    intent = await create_intent(e2e, amount="10.50")
    await pay_and_confirm(anvil, intent["deposit_address"], 10_500_000, 3)
    await wait_for(lambda: status_is(e2e, intent["id"], "paid"), what="paid")
    await wait_for(lambda: ledger_entries(e2e, intent["id"]), what="ledger entry")

    confirmed = None
    while confirmed is None:
        message = await tap.get(timeout=5)
        await message.ack()
        body = json.loads(message.body)
        if (
            body["type"] == "transfer.confirmed"
            and body["data"]["to_address"] == intent["deposit_address"].lower()
        ):
            confirmed = message
    # 1. The same event delivered twice.
    await exchange.publish(
        aio_pika.Message(
            body=confirmed.body, message_id=confirmed.message_id, content_type="application/json"
        ),
        routing_key="transfer.confirmed",
    )
    # 2. The watcher killed, its cursor moved back, and the same blocks scanned again.
    e2e.suite.stop("watcher-eth", kill=True)
    rows = await e2e.query("watcher_ethereum", "SELECT last_scanned_block FROM scan_cursor")
    rewind_to = max(int(rows[0]["last_scanned_block"]) - 20, 0)
    await e2e.query("watcher_ethereum", "UPDATE scan_cursor SET last_scanned_block = $1", rewind_to)
    e2e.suite.start("watcher-eth")
    e2e.suite.wait_ready(names=["watcher-eth"])
    await anvil.mine(2)

    async def rescanned() -> bool:
        rows = await e2e.query("watcher_ethereum", "SELECT last_scanned_block FROM scan_cursor")
        return int(rows[0]["last_scanned_block"]) >= await anvil.block_number()

    await wait_for(rescanned, what="watcher rescan")
    await asyncio.sleep(2)  # time for any (wrong) second credit to land
    paid = await get_intent(e2e, intent["id"])
    assert paid["status"] == "paid"
    assert paid["amount_confirmed"] == "10.50"
    assert len(paid["transfers"]) == 1
    assert await ledger_entries(e2e, intent["id"]) == 1
    await connection.close()


async def test_a_reorg_before_confirmation_sends_the_intent_back(
    e2e: RunningSuite, anvil: AnvilChain
) -> None:
    intent = await create_intent(e2e, amount="7.00")
    await anvil.transfer(anvil.usdt, intent["deposit_address"], 7_000_000)
    await wait_for(lambda: status_is(e2e, intent["id"], "confirming"), what="confirming")

    await anvil.reorg(1)  # the block holding the transfer is replaced by an empty one
    back = await wait_for(
        lambda: status_is(e2e, intent["id"], "awaiting_payment"), what="back to awaiting"
    )
    assert back["amount_received"] == "0.00"
    assert [t["status"] for t in back["transfers"]] in ([], ["reverted"])
    await anvil.mine(5)
    await asyncio.sleep(2)
    assert (await get_intent(e2e, intent["id"]))["status"] == "awaiting_payment"
    assert await ledger_entries(e2e, intent["id"]) == 0


async def test_look_alike_tokens_and_zero_value_transfers_credit_nothing(
    e2e: RunningSuite, anvil: AnvilChain
) -> None:
    intent = await create_intent(e2e, amount="5.00")
    address = intent["deposit_address"]
    await anvil.fake_transfer(anvil.accounts[1], address, 5_000_000)
    await anvil.zero_value_transfer_from(anvil.usdt, anvil.accounts[1], address)
    await anvil.mine(5)

    async def watcher_caught_up() -> bool:
        rows = await e2e.query("watcher_ethereum", "SELECT last_scanned_block FROM scan_cursor")
        return int(rows[0]["last_scanned_block"]) >= await anvil.block_number()

    await wait_for(watcher_caught_up, what="watcher caught up")
    await asyncio.sleep(1)
    current = await get_intent(e2e, intent["id"])
    assert current["status"] == "awaiting_payment"
    assert current["amount_received"] == "0.00"
    assert await ledger_entries(e2e, intent["id"]) == 0
    ignored = await e2e.query(
        "watcher_ethereum",
        "SELECT status FROM observed_transfers WHERE to_address = $1",
        address.lower(),
    )
    assert [r["status"] for r in ignored] == ["ignored"]  # the zero-value one, recorded
