"""A transfer that a reorg reverted and the chain then shows again with other facts (a
re-executed transaction emitting another log at the same (tx, index)) counts as what it
is now: its new recipient's intent gets the new amount, the old one nothing, and the
stored transfer shows the new facts. Through the gateway's `transfer.*` consumer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from stablegate_gateway.context import GatewayContext
from stablegate_gateway.transfers.models import Transfer
from tests.fixtures.gateway import ApiMerchant
from tests.fixtures.payments import ChainTx, create_intent, load_intent, rows

USDT = 1_000_000
Feed = Any


async def test_a_transfer_back_with_another_recipient_and_amount_counts_for_the_new_one(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    first = await create_intent(gateway_ctx, merchant.id)
    second = await create_intent(gateway_ctx, merchant.id, amount="7.00")
    tx = ChainTx(first.deposit_address, 25 * USDT)
    await transfer_feed(tx.event("detected", 1))
    await transfer_feed(tx.event("reverted", 2))

    again = replace(tx, to_address=second.deposit_address, amount_base_units=7 * USDT)
    await transfer_feed(again.event("detected", 3))
    await transfer_feed(again.event("confirmed", 4))

    old = await load_intent(gateway_ctx, first.id)
    new = await load_intent(gateway_ctx, second.id)
    assert (old.status, old.amount_pending_base_units, old.amount_confirmed_base_units) == (
        "awaiting_payment",
        0,
        0,
    )
    assert (new.status, new.amount_confirmed_base_units) == ("paid", 7 * USDT)
    [row] = await rows(gateway_ctx, Transfer, Transfer.tx_hash == tx.tx_hash)
    assert (row.intent_id, row.to_address, row.amount_base_units, row.status) == (
        second.id,
        second.deposit_address,
        7 * USDT,
        "confirmed",
    )


async def test_a_transfer_back_with_another_amount_shows_and_counts_the_new_amount(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    tx = ChainTx(intent.deposit_address, 25 * USDT)
    await transfer_feed(tx.event("confirmed", 1))
    await transfer_feed(tx.event("reverted", 2))
    again = replace(tx, amount_base_units=10 * USDT)
    await transfer_feed(again.event("confirmed", 3))

    after = await load_intent(gateway_ctx, intent.id)
    assert (after.status, after.amount_confirmed_base_units) == ("partially_paid", 10 * USDT)
    [row] = await rows(gateway_ctx, Transfer, Transfer.tx_hash == tx.tx_hash)
    assert (row.amount_base_units, row.status) == (10 * USDT, "confirmed")
