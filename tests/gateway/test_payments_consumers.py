"""`transfer.*` events into payment intents, through the consumer's inbox wrapper on a
migrated schema: credits, duplicates, ordering, reorgs, attribution and unsolicited
transfers, with the bus events, merchant events and webhook deliveries they leave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stablegate_gateway.context import GatewayContext
from stablegate_gateway.settings import GatewaySettings
from stablegate_gateway.transfers.models import Transfer
from stablegate_gateway.transfers.service import intent_events
from stablegate_gateway.webhooks.models import WebhookDelivery
from tests.fixtures.gateway import ApiMerchant, SettingsFactory
from tests.fixtures.payments import (
    ChainTx,
    count,
    create_endpoint,
    create_intent,
    deliveries,
    fast_webhook_settings,
    intent_transfers,
    load_intent,
    merchant_events,
    outbox_events,
    rows,
)


@pytest.fixture
def gateway_settings(gateway_settings_factory: SettingsFactory) -> GatewaySettings:
    return fast_webhook_settings(gateway_settings_factory)


USDT = 1_000_000  # base units per USDT on Ethereum
Feed = Any


def paid_amounts(intent: Any) -> tuple[str, str | None, int, int]:
    return (
        intent.status,
        intent.exception,
        intent.amount_pending_base_units,
        intent.amount_confirmed_base_units,
    )


async def test_detected_moves_the_intent_to_confirming(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    tx = ChainTx(intent.deposit_address, 25 * USDT)

    await transfer_feed(tx.event("detected", 1))

    after = await load_intent(gateway_ctx, intent.id)
    assert paid_amounts(after) == ("confirming", None, 25 * USDT, 0)
    assert after.version == 2
    [transfer] = await intent_transfers(gateway_ctx, intent.id)
    assert (transfer.status, transfer.amount_base_units, transfer.chain_sequence) == (
        "pending",
        25 * USDT,
        1,
    )
    types = [e.type for e in await merchant_events(gateway_ctx, intent.id)]
    assert types == ["payment_intent.created", "payment_intent.confirming"]


async def test_confirmed_pays_the_intent_and_tells_everyone(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    endpoint = await create_endpoint(gateway_ctx, merchant.id, "http://127.0.0.1:9/hooks")
    tx = ChainTx(intent.deposit_address, 25 * USDT)

    await transfer_feed(tx.event("detected", 1))
    await transfer_feed(tx.event("confirmed", 2))

    after = await load_intent(gateway_ctx, intent.id)
    assert paid_amounts(after) == ("paid", None, 0, 25 * USDT)
    assert after.paid_at is not None
    assert after.version == 3
    # The bus: created, then one update per change, each carrying the intent's version.
    published = await outbox_events(gateway_ctx, intent.id)
    assert [(m["type"], m["sequence"]) for m in published] == [
        ("intent.created", 1),
        ("intent.updated", 2),
        ("intent.updated", 3),
    ]
    last = published[-1]["data"]
    assert (last["status"], last["previous_status"]) == ("paid", "confirming")
    assert last["amount_confirmed_base_units"] == str(25 * USDT)
    assert [t["status"] for t in last["transfers"]] == ["confirmed"]
    # The merchant event carries the public intent object.
    paid = (await merchant_events(gateway_ctx, intent.id))[-1]
    assert (paid.type, paid.sequence) == ("payment_intent.paid", 3)
    assert paid.data["object"]["status"] == "paid"
    assert paid.data["object"]["amount_confirmed"] == "25.00"
    assert paid.data["object"]["transfers"][0]["tx_hash"] == tx.tx_hash
    # One delivery per merchant event for the endpoint created before the transfers.
    queued = await deliveries(gateway_ctx, WebhookDelivery.endpoint_id == endpoint.id)
    assert {d.event_id for d in queued} >= {paid.id}
    assert all(d.status == "pending" for d in queued)


async def test_the_same_event_delivered_twice_credits_once(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id, amount="50.00")
    tx = ChainTx(intent.deposit_address, 25 * USDT)
    confirmed = tx.event("confirmed", 2)

    await transfer_feed(confirmed)
    await transfer_feed(confirmed)  # redelivered by the broker: the inbox drops it
    # The watcher published the same fact again under a new event id: the sequence drops it.
    await transfer_feed(tx.event("confirmed", 2))

    after = await load_intent(gateway_ctx, intent.id)
    assert paid_amounts(after) == ("partially_paid", None, 0, 25 * USDT)
    assert after.version == 2
    assert await count(gateway_ctx, Transfer) == 1


async def test_an_older_event_after_a_newer_one_is_ignored(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    tx = ChainTx(intent.deposit_address, 25 * USDT)

    await transfer_feed(tx.event("confirmed", 2))  # the queue handed us the confirmation first
    await transfer_feed(tx.event("detected", 1))

    after = await load_intent(gateway_ctx, intent.id)
    assert paid_amounts(after) == ("paid", None, 0, 25 * USDT)
    [transfer] = await intent_transfers(gateway_ctx, intent.id)
    assert (transfer.status, transfer.chain_sequence) == ("confirmed", 2)
    types = [e.type for e in await merchant_events(gateway_ctx, intent.id)]
    assert types == ["payment_intent.created", "payment_intent.paid"]


async def test_reverted_before_confirmation_leaves_nothing_counted(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    tx = ChainTx(intent.deposit_address, 25 * USDT)

    await transfer_feed(tx.event("detected", 1))
    await transfer_feed(tx.event("reverted", 2))

    after = await load_intent(gateway_ctx, intent.id)
    assert paid_amounts(after) == ("awaiting_payment", None, 0, 0)
    assert after.funded_before_end is False
    [transfer] = await intent_transfers(gateway_ctx, intent.id)
    assert transfer.status == "reverted"
    types = [e.type for e in await merchant_events(gateway_ctx, intent.id)]
    assert types[-1] == "payment_intent.awaiting_payment"


async def test_a_reorg_after_confirmation_takes_the_payment_back_and_a_remine_restores_it(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    tx = ChainTx(intent.deposit_address, 25 * USDT)

    await transfer_feed(tx.event("confirmed", 1))
    await transfer_feed(tx.event("reverted", 2))
    reverted = await load_intent(gateway_ctx, intent.id)
    assert paid_amounts(reverted) == ("awaiting_payment", None, 0, 0)
    assert reverted.paid_at is None

    await transfer_feed(tx.event("detected", 3))  # mined again in a later block
    await transfer_feed(tx.event("confirmed", 4))
    after = await load_intent(gateway_ctx, intent.id)
    assert paid_amounts(after) == ("paid", None, 0, 25 * USDT)
    types = [e.type for e in await merchant_events(gateway_ctx, intent.id)]
    assert types == [
        "payment_intent.created",
        "payment_intent.paid",
        "payment_intent.awaiting_payment",
        "payment_intent.confirming",
        "payment_intent.paid",
    ]
    assert [e.sequence for e in await merchant_events(gateway_ctx, intent.id)] == [1, 2, 3, 4, 5]


async def test_two_partial_transfers_sum_to_paid(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    first = ChainTx(intent.deposit_address, 10 * USDT)
    second = ChainTx(intent.deposit_address, 15 * USDT, log_index=3)

    await transfer_feed(first.event("confirmed", 1))
    assert (await load_intent(gateway_ctx, intent.id)).status == "partially_paid"
    await transfer_feed(second.event("detected", 1))
    assert (await load_intent(gateway_ctx, intent.id)).status == "confirming"
    await transfer_feed(second.event("confirmed", 2))

    after = await load_intent(gateway_ctx, intent.id)
    assert paid_amounts(after) == ("paid", None, 0, 25 * USDT)
    assert len(await intent_transfers(gateway_ctx, intent.id)) == 2


async def test_paying_more_than_due_is_paid_and_overpaid(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    await transfer_feed(ChainTx(intent.deposit_address, 30 * USDT).event("confirmed", 1))
    after = await load_intent(gateway_ctx, intent.id)
    assert paid_amounts(after) == ("paid", "overpaid", 0, 30 * USDT)


async def test_a_transfer_to_an_unknown_address_is_kept_as_unsolicited(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    tx = ChainTx("0x" + "77" * 20, 5 * USDT)
    await transfer_feed(tx.event("detected", 1))
    await transfer_feed(tx.event("confirmed", 2))

    [transfer] = await rows(gateway_ctx, Transfer, Transfer.tx_hash == tx.tx_hash)
    assert transfer.intent_id is None
    assert (transfer.status, transfer.amount_base_units) == ("confirmed", 5 * USDT)


async def test_attribution_is_by_address_and_time_and_the_network_decides_what_it_is(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    # Same EVM address on BSC: this Ethereum intent's address, paid on the wrong network.
    wrong_network = ChainTx(
        intent.deposit_address,
        25 * 10**18,
        network="bsc",
        token_contract="0x55d398326f99059ff775485246999027b3197955",
    )
    # Sent an hour before the intent existed: it belonged to nobody then.
    too_early = ChainTx(
        intent.deposit_address, 25 * USDT, block_timestamp=intent.created_at - timedelta(hours=1)
    )
    await transfer_feed(wrong_network.event("confirmed", 1))
    await transfer_feed(too_early.event("confirmed", 1))

    after = await load_intent(gateway_ctx, intent.id)
    assert paid_amounts(after) == ("requires_action", "wrong_network", 0, 0)
    [attached] = await intent_transfers(gateway_ctx, intent.id)
    assert (attached.tx_hash, attached.network) == (wrong_network.tx_hash, "bsc")
    unsolicited = await rows(gateway_ctx, Transfer, Transfer.intent_id.is_(None))
    assert {t.tx_hash for t in unsolicited} == {too_early.tx_hash}


async def test_a_block_slightly_older_than_the_intent_still_counts(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    """Block clocks lag: a payment in the block that includes the creation counts."""
    intent = await create_intent(gateway_ctx, merchant.id)
    tx = ChainTx(
        intent.deposit_address, 25 * USDT, block_timestamp=intent.created_at - timedelta(seconds=12)
    )
    await transfer_feed(tx.event("confirmed", 1))
    assert (await load_intent(gateway_ctx, intent.id)).status == "paid"


async def test_a_payment_after_expiry_needs_action(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    from stablegate_gateway.intents.jobs import expire_due_intents

    intent = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await expire_due_intents(gateway_ctx, now=later) == 1
    assert (await load_intent(gateway_ctx, intent.id)).status == "expired"

    # The address is cooling, so the late transfer is still this intent's.
    # Mined well after the expiry: chain time, not processing time, makes it late.
    late = ChainTx(intent.deposit_address, 10 * USDT, block_timestamp=later)
    await transfer_feed(late.event("confirmed", 1))
    after = await load_intent(gateway_ctx, intent.id)
    assert paid_amounts(after) == ("requires_action", "paid_late", 0, 10 * USDT)


# -- the pure mapping from a transfer's move to intent events ---------------------------------


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, "pending", ["TransferSeen(amount=5, mined_in_time=True)"]),
        (None, "confirmed", ["TransferConfirmed(amount=5, was_seen=False, mined_in_time=True)"]),
        (None, "reverted", []),
        ("pending", "pending", []),
        (
            "pending",
            "confirmed",
            ["TransferConfirmed(amount=5, was_seen=True, mined_in_time=True)"],
        ),
        ("pending", "reverted", ["TransferReverted(amount=5, was_confirmed=False)"]),
        ("confirmed", "confirmed", []),
        ("confirmed", "reverted", ["TransferReverted(amount=5, was_confirmed=True)"]),
        (
            "confirmed",
            "pending",
            [
                "TransferReverted(amount=5, was_confirmed=True)",
                "TransferSeen(amount=5, mined_in_time=True)",
            ],
        ),
        ("reverted", "pending", ["TransferSeen(amount=5, mined_in_time=True)"]),
        (
            "reverted",
            "confirmed",
            ["TransferConfirmed(amount=5, was_seen=False, mined_in_time=True)"],
        ),
        ("reverted", "reverted", []),
    ],
)
def test_intent_events_for_each_move(before: Any, after: Any, expected: list[str]) -> None:
    assert [repr(e) for e in intent_events(before, after, 5, mined_in_time=True)] == expected
