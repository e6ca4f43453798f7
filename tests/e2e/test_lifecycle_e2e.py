"""The payment lifecycle through the whole suite on Ethereum (anvil): gateway, watcher,
reconciler and dashboard as separate processes against PostgreSQL and RabbitMQ, one
suite for the whole module.

Underpay then top up; two transfers summed; overpay; underpay and expire; pay after
expiry; wrong asset; resolve; an unsolicited transfer announced by a signed webhook.
Short expiries come from a settings knob (`GATEWAY_MIN_EXPIRES_IN_SECONDS`), and the
confirmation depth is overridden to 2 for both the gateway and the watcher, which every
intent then shows (`confirmations_required`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.conftest import RunningSuite, WebhookReceiver, _suite, verify_signature
from tests.e2e.test_ethereum_payment import (
    create_intent,
    get_intent,
    ledger_entries,
    status_is,
    wait_for,
)
from tests.fixtures.anvil import AnvilChain

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

CONFIRMATIONS = 2
USDT = 1_000_000
SKEW_SECONDS = 3

SERVICE_ENV = {
    "gateway": {
        "GATEWAY_MIN_EXPIRES_IN_SECONDS": "1",
        "GATEWAY_CONFIRMATIONS": f'{{"ethereum": {CONFIRMATIONS}}}',
        "GATEWAY_ADDRESS_JOB_SECONDS": "1",
        # Paid in time is chain time with this allowance: short, so a late payment can be
        # made seconds after an expiry (anvil stamps blocks with the wall clock).
        "GATEWAY_ATTRIBUTION_SKEW_SECONDS": str(SKEW_SECONDS),
    },
    "watcher-eth": {"WATCHER_CONFIRMATIONS": str(CONFIRMATIONS)},
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def e2e(anvil: AnvilChain) -> AsyncIterator[RunningSuite]:
    async with _suite(anvil, "test_lifecycle_e2e", service_env=SERVICE_ENV) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def secret(e2e: RunningSuite, webhook_receiver: WebhookReceiver) -> AsyncIterator[str]:
    """A webhook endpoint for this test's receiver (removed afterwards); its secret."""
    async with e2e.api() as api:
        endpoint = (
            await api.post("/v1/webhook_endpoints", json={"url": webhook_receiver.url})
        ).json()
    yield str(endpoint["secret"])
    async with e2e.api() as api:
        await api.delete(f"/v1/webhook_endpoints/{endpoint['id']}")


async def pay(anvil: AnvilChain, intent: dict[str, Any], amount: int, token: str = "") -> str:
    """Send `amount` base units to the intent's address and mine it to final depth."""
    tx_hash = await anvil.transfer(token or anvil.usdt, intent["deposit_address"], amount)
    await anvil.mine(intent["confirmations_required"] - 1)
    return tx_hash


async def reached(
    e2e: RunningSuite, intent: dict[str, Any], status: str, exception: str | None = None
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        found = await status_is(e2e, intent["id"], status)
        return found if found is not None and found["exception"] == exception else None

    result: dict[str, Any] = await wait_for(probe, timeout=60, what=f"{status}/{exception}")
    return result


async def signed_webhook(
    receiver: WebhookReceiver, secret: str, event_type: str, object_id: str
) -> dict[str, Any]:
    """The first webhook of `event_type` about `object_id`, after checking its signature."""

    async def arrived() -> list[Any]:
        return [
            w for w in receiver.of_type(event_type) if w.event["data"]["object"]["id"] == object_id
        ]

    [hook, *_] = await wait_for(arrived, what=f"{event_type} webhook")
    assert verify_signature(secret, hook.headers["Stablegate-Signature"], hook.body)
    event: dict[str, Any] = hook.event
    return event


async def test_underpay_then_top_up_is_paid(
    e2e: RunningSuite, anvil: AnvilChain, webhook_receiver: WebhookReceiver, secret: str
) -> None:
    intent = await create_intent(e2e, amount="25.00")
    assert intent["confirmations_required"] == CONFIRMATIONS  # the configured override

    await pay(anvil, intent, 10 * USDT)
    partial = await reached(e2e, intent, "partially_paid")
    assert (partial["amount_confirmed"], partial["amount_remaining"]) == ("10.00", "15.00")
    await pay(anvil, intent, 15 * USDT)
    paid = await reached(e2e, intent, "paid")

    assert (paid["amount_confirmed"], paid["amount_remaining"]) == ("25.00", "0.00")
    assert [t["amount"] for t in paid["transfers"]] == ["10.00", "15.00"]
    event = await signed_webhook(webhook_receiver, secret, "payment_intent.paid", intent["id"])
    assert event["data"]["object"]["amount_confirmed"] == "25.00"
    await signed_webhook(webhook_receiver, secret, "payment_intent.partially_paid", intent["id"])


async def test_two_transfers_are_summed(e2e: RunningSuite, anvil: AnvilChain) -> None:
    intent = await create_intent(e2e, amount="20.00")
    await anvil.transfer(anvil.usdt, intent["deposit_address"], 12_500_000)
    await anvil.transfer(anvil.usdt, intent["deposit_address"], 7_500_000)
    await anvil.mine(CONFIRMATIONS)

    paid = await reached(e2e, intent, "paid")
    assert paid["amount_confirmed"] == "20.00"
    assert sorted(t["amount"] for t in paid["transfers"]) == ["12.50", "7.50"]

    async def both_booked() -> bool:
        return await ledger_entries(e2e, intent["id"]) >= 2

    await wait_for(both_booked, what="two ledger entries")
    await asyncio.sleep(1)  # a wrong third booking would land by now
    assert await ledger_entries(e2e, intent["id"]) == 2


async def test_overpay_is_paid_and_overpaid(e2e: RunningSuite, anvil: AnvilChain) -> None:
    intent = await create_intent(e2e, amount="5.00")
    await pay(anvil, intent, 6 * USDT)
    paid = await reached(e2e, intent, "paid", "overpaid")
    assert (paid["amount_confirmed"], paid["amount_remaining"]) == ("6.00", "0.00")


async def test_underpay_and_expire_needs_action_and_resolve_marks_it_paid(
    e2e: RunningSuite, anvil: AnvilChain, webhook_receiver: WebhookReceiver, secret: str
) -> None:
    intent = await create_intent(e2e, amount="25.00", expires_in=8)
    await pay(anvil, intent, 24 * USDT)
    await reached(e2e, intent, "partially_paid")

    held = await reached(e2e, intent, "requires_action", "underpaid")
    assert held["amount_remaining"] == "1.00"
    event = await signed_webhook(
        webhook_receiver, secret, "payment_intent.requires_action", intent["id"]
    )
    assert event["data"]["object"]["exception"] == "underpaid"

    async with e2e.api() as api:
        response = await api.post(
            f"/v1/payment_intents/{intent['id']}/resolve",
            json={"action": "mark_paid", "reason": "the customer's exchange kept 1 USDT"},
        )
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["exception"]) == ("paid", "underpaid")
    paid = await signed_webhook(webhook_receiver, secret, "payment_intent.paid", intent["id"])
    assert paid["data"]["object"]["resolution"]["action"] == "mark_paid"
    recorded = await e2e.query(
        "gateway",
        "SELECT action, reason, actor_type FROM payment_intent_resolutions WHERE intent_id = $1",
        intent["id"],
    )
    assert [tuple(r) for r in recorded] == [
        ("mark_paid", "the customer's exchange kept 1 USDT", "api_key")
    ]


async def test_paying_after_expiry_needs_action_paid_late(
    e2e: RunningSuite, anvil: AnvilChain
) -> None:
    intent = await create_intent(e2e, amount="3.00", expires_in=1)
    await reached(e2e, intent, "expired")
    # Mined after the expiry and beyond the allowance for block clocks: late by chain time.
    await asyncio.sleep(SKEW_SECONDS + 1.5)
    await pay(anvil, intent, 3 * USDT)

    late = await reached(e2e, intent, "requires_action", "paid_late")
    assert late["amount_confirmed"] == "3.00"


async def test_the_wrong_asset_needs_action_and_is_never_counted(
    e2e: RunningSuite, anvil: AnvilChain
) -> None:
    intent = await create_intent(e2e, amount="4.00")  # USDT
    tx_hash = await pay(anvil, intent, 4 * USDT, token=anvil.usdc)

    held = await reached(e2e, intent, "requires_action", "wrong_asset")
    assert (held["amount_received"], held["amount_confirmed"]) == ("0.00", "0.00")
    [shown] = held["transfers"]
    assert (shown["tx_hash"], shown["asset"], shown["amount"]) == (tx_hash, "USDC", "4.00")
    assert await ledger_entries(e2e, intent["id"]) == 0


async def test_an_unsolicited_transfer_is_kept_and_announced(
    e2e: RunningSuite, anvil: AnvilChain, webhook_receiver: WebhookReceiver, secret: str
) -> None:
    intent = await create_intent(e2e, amount="2.00", expires_in=1)
    await reached(e2e, intent, "expired")
    # The cool-down is a day by default: end it now, and let the pool job release the address.
    await e2e.query(
        "gateway",
        "UPDATE deposit_addresses SET cooling_until = now() - interval '1 second' "
        "WHERE intent_id = $1",
        intent["id"],
    )

    async def released() -> bool:
        rows = await e2e.query(
            "gateway",
            "SELECT status FROM deposit_addresses WHERE address = $1",
            intent["deposit_address"].lower(),
        )
        return [r["status"] for r in rows] == ["free"]

    await wait_for(released, what="the address back in the pool")
    tx_hash = await pay(anvil, intent, 2 * USDT)

    event = await _unsolicited_webhook(webhook_receiver, secret, tx_hash)
    announced = event["data"]["object"]
    assert (announced["amount"], announced["asset"], announced["status"]) == (
        "2.00",
        "USDT",
        "confirmed",
    )
    assert announced["payment_intent"] == intent["id"]
    kept = await e2e.query("gateway", "SELECT intent_id FROM transfers WHERE tx_hash = $1", tx_hash)
    assert [r["intent_id"] for r in kept] == [None]
    assert (await get_intent(e2e, intent["id"]))["status"] == "expired"


async def _unsolicited_webhook(
    receiver: WebhookReceiver, secret: str, tx_hash: str
) -> dict[str, Any]:
    async def arrived() -> list[Any]:
        return [
            w
            for w in receiver.of_type("transfer.unsolicited")
            if w.event["data"]["object"]["tx_hash"] == tx_hash
        ]

    [hook] = await wait_for(arrived, what="transfer.unsolicited webhook")
    assert verify_signature(secret, hook.headers["Stablegate-Signature"], hook.body)
    event: dict[str, Any] = hook.event
    return event
