"""The lifecycle cases through the gateway's `transfer.*` consumer (inbox wrapper, one
transaction per event) on a migrated schema: top-ups, underpayment, late payment,
tolerance, wrong asset, wrong network (both EVM directions), reorgs undoing an exception,
and unsolicited transfers announced to the last merchant at the address. Each case checks
the stored intent, the public object, the merchant events and what the bus is told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stablegate_gateway.addresses.jobs import release_cooled_addresses
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.events.models import MerchantEvent
from stablegate_gateway.intents.jobs import expire_due_intents
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.intents.presenter import present_intent
from stablegate_gateway.intents.repository import transfers_of
from stablegate_gateway.intents.tolerance import set_merchant_default
from stablegate_gateway.settings import GatewaySettings
from stablegate_gateway.transfers.models import Transfer
from stablegate_gateway.transfers.schemas import UnsolicitedTransferOut
from stablegate_gateway.webhooks.models import WebhookDelivery
from tests.fixtures.gateway import ApiMerchant, MerchantFactory, SettingsFactory
from tests.fixtures.payments import (
    USDC_ETHEREUM,
    ChainTx,
    create_endpoint,
    create_intent,
    deliveries,
    fast_webhook_settings,
    load_intent,
    merchant_events,
    outbox_events,
    rows,
)

USDT = 1_000_000  # base units per USDT on Ethereum
BSC_UNIT = 10**18  # base units per USDT on BSC
USDT_BSC = "0x55d398326f99059ff775485246999027b3197955"
Feed = Any


@pytest.fixture
def gateway_settings(gateway_settings_factory: SettingsFactory) -> GatewaySettings:
    return fast_webhook_settings(gateway_settings_factory)


def state(intent: Any) -> tuple[str, str | None, int, int]:
    return (
        intent.status,
        intent.exception,
        intent.amount_pending_base_units,
        intent.amount_confirmed_base_units,
    )


async def public(ctx: GatewayContext, intent_id: str) -> dict[str, Any]:
    intent = await load_intent(ctx, intent_id)
    async with ctx.db.sessions() as session:
        transfers = (await transfers_of(session, [intent_id])).get(intent_id, [])
    return present_intent(intent, transfers, ctx, None)


async def event_types(ctx: GatewayContext, intent_id: str) -> list[str]:
    return [e.type for e in await merchant_events(ctx, intent_id)]


async def expire_now(ctx: GatewayContext, intent_id: str) -> None:
    """Move the intent's expiry into the past and run the expiry job."""
    async with ctx.db.transaction() as session:
        row = await session.get(PaymentIntent, intent_id)
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    await expire_due_intents(ctx)


# -- amounts ----------------------------------------------------------------------------------


async def test_underpay_then_top_up_is_paid(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    first = ChainTx(intent.deposit_address, 10 * USDT)
    top_up = ChainTx(intent.deposit_address, 15 * USDT, log_index=1)

    await transfer_feed(first.event("detected", 1))
    await transfer_feed(first.event("confirmed", 2))
    partial = await public(gateway_ctx, intent.id)
    assert (partial["status"], partial["amount_remaining"]) == ("partially_paid", "15.00")

    await transfer_feed(top_up.event("detected", 1))
    await transfer_feed(top_up.event("confirmed", 2))
    paid = await public(gateway_ctx, intent.id)
    assert (paid["status"], paid["exception"]) == ("paid", None)
    assert (paid["amount_confirmed"], paid["amount_remaining"]) == ("25.00", "0.00")
    assert [t["status"] for t in paid["transfers"]] == ["confirmed", "confirmed"]
    assert await event_types(gateway_ctx, intent.id) == [
        "payment_intent.created",
        "payment_intent.confirming",
        "payment_intent.partially_paid",
        "payment_intent.confirming",
        "payment_intent.paid",
    ]


async def test_underpay_and_expire_requires_action_underpaid_and_tells_the_merchant(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    endpoint = await create_endpoint(gateway_ctx, merchant.id, "http://127.0.0.1:9/hooks")
    intent = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    await transfer_feed(ChainTx(intent.deposit_address, 10 * USDT).event("confirmed", 1))

    await expire_now(gateway_ctx, intent.id)

    after = await load_intent(gateway_ctx, intent.id)
    assert state(after) == ("requires_action", "underpaid", 0, 10 * USDT)
    assert after.expired_at is not None
    last = (await merchant_events(gateway_ctx, intent.id))[-1]
    assert last.type == "payment_intent.requires_action"
    assert last.data["object"]["exception"] == "underpaid"
    queued = await deliveries(gateway_ctx, WebhookDelivery.endpoint_id == endpoint.id)
    assert last.id in {d.event_id for d in queued}


async def test_a_full_payment_after_expiry_is_paid_late_not_paid(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    await expire_now(gateway_ctx, intent.id)
    assert (await load_intent(gateway_ctx, intent.id)).status == "expired"

    # Mined after the expiry, beyond the clock-skew allowance (chain time decides).
    skew = timedelta(seconds=gateway_ctx.settings.gateway.attribution_skew_seconds)
    mined = datetime.now(UTC) + skew + timedelta(seconds=1)
    tx = ChainTx(intent.deposit_address, 25 * USDT, block_timestamp=mined)
    await transfer_feed(tx.event("confirmed", 1))

    after = await load_intent(gateway_ctx, intent.id)
    assert state(after) == ("requires_action", "paid_late", 0, 25 * USDT)
    assert after.paid_at is None


async def test_more_money_after_paid_turns_it_overpaid_and_says_so(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    await transfer_feed(ChainTx(intent.deposit_address, 25 * USDT).event("confirmed", 1))
    extra = ChainTx(intent.deposit_address, 5 * USDT, log_index=7)
    await transfer_feed(extra.event("confirmed", 1))

    after = await load_intent(gateway_ctx, intent.id)
    assert state(after) == ("paid", "overpaid", 0, 30 * USDT)
    events = await merchant_events(gateway_ctx, intent.id)
    paid_events = [e for e in events if e.type == "payment_intent.paid"]
    # Status unchanged, exception changed: the merchant hears of it (a second `paid`).
    assert [e.data["object"]["exception"] for e in paid_events] == [None, "overpaid"]


async def test_a_shortfall_within_the_merchants_tolerance_is_paid(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    async with gateway_ctx.db.transaction() as session:
        await set_merchant_default(session, merchant.id, percent="0", amount="0.10")
    intent = await create_intent(gateway_ctx, merchant.id)
    short = ChainTx(intent.deposit_address, 25 * USDT - 100_000)  # 24.90
    await transfer_feed(short.event("confirmed", 1))

    paid = await public(gateway_ctx, intent.id)
    assert (paid["status"], paid["exception"]) == ("paid", None)
    assert paid["amount_remaining"] == "0.10"  # the shortfall that was accepted
    assert paid["underpayment_tolerance"] == {"percent": "0", "amount": "0.10"}


async def test_a_request_override_replaces_the_merchants_tolerance(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    async with gateway_ctx.db.transaction() as session:
        await set_merchant_default(session, merchant.id, percent="1", amount="1.00")
    strict = await create_intent(gateway_ctx, merchant.id, underpayment_tolerance={})
    await transfer_feed(ChainTx(strict.deposit_address, 25 * USDT - 1).event("confirmed", 1))

    after = await public(gateway_ctx, strict.id)
    assert after["underpayment_tolerance"] == {"percent": "0", "amount": "0.00"}
    assert (after["status"], after["amount_remaining"]) == ("partially_paid", "0.000001")


# -- wrong asset ------------------------------------------------------------------------------


async def test_wrong_asset_requires_action_and_is_kept_out_of_the_ledger(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    usdc = ChainTx(intent.deposit_address, 25 * USDT, token_contract=USDC_ETHEREUM)

    await transfer_feed(usdc.event("detected", 1))
    flagged = await public(gateway_ctx, intent.id)
    assert (flagged["status"], flagged["exception"]) == ("requires_action", "wrong_asset")
    assert (flagged["amount_received"], flagged["amount_confirmed"]) == ("0.00", "0.00")
    [shown] = flagged["transfers"]
    assert (shown["asset"], shown["network"], shown["amount"]) == ("USDC", "ethereum", "25.00")

    await transfer_feed(usdc.event("confirmed", 2))
    assert (await load_intent(gateway_ctx, intent.id)).wrong_asset_transfers == 1
    # The reconciler books every transfer an intent snapshot lists, in the intent's asset.
    published = await outbox_events(gateway_ctx, intent.id)
    assert published[-1]["data"]["status"] == "requires_action"
    assert published[-1]["data"]["transfers"] == []
    assert await event_types(gateway_ctx, intent.id) == [
        "payment_intent.created",
        "payment_intent.requires_action",
    ]


async def test_a_reverted_wrong_asset_transfer_undoes_its_exception(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    usdc = ChainTx(intent.deposit_address, 5 * USDT, token_contract=USDC_ETHEREUM)
    await transfer_feed(usdc.event("confirmed", 1))
    await transfer_feed(usdc.event("reverted", 2))

    after = await load_intent(gateway_ctx, intent.id)
    assert state(after) == ("awaiting_payment", None, 0, 0)
    assert after.wrong_asset_transfers == 0
    assert (await event_types(gateway_ctx, intent.id))[-1] == "payment_intent.awaiting_payment"

    await transfer_feed(usdc.event("confirmed", 3))  # mined again
    assert (await load_intent(gateway_ctx, intent.id)).exception == "wrong_asset"


async def test_paid_with_a_wrong_asset_on_the_side_is_paid_and_says_so(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    usdc = ChainTx(intent.deposit_address, 3 * USDT, token_contract=USDC_ETHEREUM)
    await transfer_feed(usdc.event("confirmed", 1))
    await transfer_feed(ChainTx(intent.deposit_address, 25 * USDT).event("confirmed", 1))

    after = await load_intent(gateway_ctx, intent.id)
    assert state(after) == ("paid", "wrong_asset", 0, 25 * USDT)
    published = (await outbox_events(gateway_ctx, intent.id))[-1]["data"]
    assert [t["amount_base_units"] for t in published["transfers"]] == [str(25 * USDT)]


# -- wrong network ----------------------------------------------------------------------------


async def test_bsc_money_to_an_ethereum_intents_address_is_wrong_network(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    on_bsc = ChainTx(intent.deposit_address, 25 * BSC_UNIT, network="bsc", token_contract=USDT_BSC)

    await transfer_feed(on_bsc.event("detected", 1))
    await transfer_feed(on_bsc.event("confirmed", 2))

    after = await public(gateway_ctx, intent.id)
    assert (after["status"], after["exception"]) == ("requires_action", "wrong_network")
    assert after["amount_received"] == "0.00"
    [shown] = after["transfers"]
    # Written in BSC's own 18 decimals, not the Ethereum intent's 6.
    assert (shown["network"], shown["asset"], shown["amount"]) == ("bsc", "USDT", "25.00")
    assert shown["amount_base_units"] == str(25 * BSC_UNIT)
    assert (await outbox_events(gateway_ctx, intent.id))[-1]["data"]["transfers"] == []

    await transfer_feed(on_bsc.event("reverted", 3))
    reverted = await load_intent(gateway_ctx, intent.id)
    assert state(reverted) == ("awaiting_payment", None, 0, 0)


async def test_ethereum_money_to_a_bsc_intents_address_is_wrong_network(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id, network="bsc")
    assert intent.decimals == 18
    on_eth = ChainTx(intent.deposit_address, 25 * USDT)  # Ethereum USDT, 6 decimals
    await transfer_feed(on_eth.event("confirmed", 1))

    after = await public(gateway_ctx, intent.id)
    assert (after["status"], after["exception"]) == ("requires_action", "wrong_network")
    assert after["transfers"][0]["amount"] == "25.00"


async def test_the_right_network_still_pays_after_a_wrong_network_transfer(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id, network="bsc")
    await transfer_feed(ChainTx(intent.deposit_address, 1 * USDT).event("confirmed", 1))
    right = ChainTx(intent.deposit_address, 25 * BSC_UNIT, network="bsc", token_contract=USDT_BSC)
    await transfer_feed(right.event("confirmed", 1))

    after = await load_intent(gateway_ctx, intent.id)
    assert state(after) == ("paid", "wrong_network", 0, 25 * BSC_UNIT)


# -- unsolicited ------------------------------------------------------------------------------


async def unsolicited_events(ctx: GatewayContext) -> list[MerchantEvent]:
    return await rows(ctx, MerchantEvent, MerchantEvent.type == "transfer.unsolicited")


async def test_money_to_a_released_address_is_kept_and_announced_to_its_last_merchant(
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    merchant_factory: MerchantFactory,
    transfer_feed: Feed,
) -> None:
    other = await merchant_factory("Someone Else")
    endpoint = await create_endpoint(gateway_ctx, merchant.id, "http://127.0.0.1:9/hooks")
    intent = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    await expire_now(gateway_ctx, intent.id)
    cooldown = gateway_ctx.settings.gateway.address_cooldown_seconds
    later = datetime.now(UTC) + timedelta(seconds=cooldown + 60)
    assert await release_cooled_addresses(gateway_ctx, now=later) == 1

    late = ChainTx(intent.deposit_address, 7 * USDT)
    await transfer_feed(late.event("detected", 1))
    assert await unsolicited_events(gateway_ctx) == []  # announced when final, not before
    await transfer_feed(late.event("confirmed", 2))
    await transfer_feed(late.event("confirmed", 3))  # re-reported: announced once only

    [row] = await rows(gateway_ctx, Transfer, Transfer.tx_hash == late.tx_hash)
    assert (row.intent_id, row.status) == (None, "confirmed")
    [event] = await unsolicited_events(gateway_ctx)
    assert event.merchant_id == merchant.id != other.id
    announced = event.data["object"]
    UnsolicitedTransferOut.model_validate(announced)
    assert (announced["id"], announced["object"], announced["status"]) == (
        row.id,
        "transfer",
        "confirmed",
    )
    assert (announced["amount"], announced["asset"], announced["network"]) == (
        "7.00",
        "USDT",
        "ethereum",
    )
    assert announced["payment_intent"] == intent.id
    assert announced["to_address"].lower() == intent.deposit_address
    queued = await deliveries(gateway_ctx, WebhookDelivery.endpoint_id == endpoint.id)
    assert event.id in {d.event_id for d in queued}
    assert (await load_intent(gateway_ctx, intent.id)).amount_confirmed_base_units == 0


async def test_money_to_an_address_nobody_held_is_kept_for_operators_only(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    nobodys = ChainTx("0x" + "42" * 20, 9 * USDT)
    poisoning = ChainTx("0x" + "43" * 20, 0)
    await transfer_feed(nobodys.event("confirmed", 1))
    await transfer_feed(poisoning.event("confirmed", 1))

    kept = await rows(gateway_ctx, Transfer, Transfer.intent_id.is_(None))
    assert {t.tx_hash for t in kept} == {nobodys.tx_hash, poisoning.tx_hash}
    assert await unsolicited_events(gateway_ctx) == []


async def test_a_zero_value_transfer_to_a_merchants_old_address_is_not_announced(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    # Before the intent existed: unsolicited, and the merchant holds the address now.
    early = intent.created_at - timedelta(hours=1)
    await transfer_feed(
        ChainTx(intent.deposit_address, 0, block_timestamp=early).event("confirmed", 1)
    )
    assert await unsolicited_events(gateway_ctx) == []
    await transfer_feed(
        ChainTx(intent.deposit_address, 2 * USDT, block_timestamp=early).event("confirmed", 1)
    )
    [event] = await unsolicited_events(gateway_ctx)
    assert event.data["object"]["payment_intent"] == intent.id
