"""A deposit address that went back to the pool must not carry an earlier payment over to
its next holder: a late payment recorded as unsolicited stays unsolicited when a new
intent gets the address, and the pool hands out the least recently used free address, so
a just-released one is the last to be reused. Through the gateway's `transfer.*` consumer
and the address jobs, on a migrated schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from stablegate_gateway.addresses.jobs import release_cooled_addresses
from stablegate_gateway.addresses.models import DepositAddress
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.intents.jobs import expire_due_intents
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.transfers.models import Transfer
from tests.fixtures.gateway import ApiMerchant
from tests.fixtures.payments import ChainTx, create_intent, load_intent, rows

USDT = 1_000_000
Feed = Any


async def recycle(ctx: GatewayContext, intent: PaymentIntent) -> datetime:
    """Expire the intent and let its address cool down and return to the pool; return
    the time it was released."""
    cooldown = timedelta(seconds=ctx.settings.gateway.address_cooldown_seconds)
    ended = intent.expires_at + timedelta(seconds=1)
    assert await expire_due_intents(ctx, now=ended) == 1
    released = ended + cooldown + timedelta(seconds=1)
    assert await release_cooled_addresses(ctx, now=released) == 1
    return released


async def take_the_free_pool_but(ctx: GatewayContext, address_id: str) -> None:
    """Mark every free address except one as taken, so the next intent must get it."""
    async with ctx.db.transaction() as session:
        await session.execute(
            update(DepositAddress)
            .where(DepositAddress.status == "free", DepositAddress.id != address_id)
            .values(status="allocated")
        )


async def test_a_late_payment_to_a_recycled_address_is_not_credited_to_its_new_holder(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    first = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    await recycle(gateway_ctx, first)

    # The first customer pays late, after the address went back to the pool.
    late = ChainTx(first.deposit_address, 25 * USDT, block_timestamp=datetime.now(UTC))
    await transfer_feed(late.event("detected", 1))
    [row] = await rows(gateway_ctx, Transfer, Transfer.tx_hash == late.tx_hash)
    assert row.intent_id is None

    # A new intent gets the same address within the skew window of that block.
    await take_the_free_pool_but(gateway_ctx, first.deposit_address_id)
    second = await create_intent(gateway_ctx, merchant.id)
    assert second.deposit_address == first.deposit_address
    await transfer_feed(late.event("confirmed", 2))

    [row] = await rows(gateway_ctx, Transfer, Transfer.tx_hash == late.tx_hash)
    assert (row.intent_id, row.status) == (None, "confirmed")
    after = await load_intent(gateway_ctx, second.id)
    assert (after.status, after.amount_confirmed_base_units) == ("awaiting_payment", 0)


async def test_a_payment_heard_of_before_its_intent_committed_is_still_credited(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    """The re-attribution the rule must keep: the intent got its address before the
    transfer was first recorded, but committed after (a late-committed creation)."""
    intent = await create_intent(gateway_ctx, merchant.id)
    tx = ChainTx(intent.deposit_address, 25 * USDT)
    async with gateway_ctx.db.transaction() as session:
        address = await session.get(DepositAddress, intent.deposit_address_id)
        assert address is not None
        # As if the detected event had been applied while the creation was uncommitted.
        address.status = "free"
    await transfer_feed(tx.event("detected", 1))
    assert (await rows(gateway_ctx, Transfer, Transfer.tx_hash == tx.tx_hash))[0].intent_id is None
    async with gateway_ctx.db.transaction() as session:
        address = await session.get(DepositAddress, intent.deposit_address_id)
        assert address is not None
        address.status = "allocated"
    await transfer_feed(tx.event("confirmed", 2))

    assert (await load_intent(gateway_ctx, intent.id)).status == "paid"


async def test_the_pool_hands_out_the_least_recently_used_free_address(
    gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    first = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    await recycle(gateway_ctx, first)

    # Never-used addresses go first, however high their derivation index.
    second = await create_intent(gateway_ctx, merchant.id)
    assert second.deposit_address != first.deposit_address

    # Among released ones, the one released longest ago goes first.
    third = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    await recycle(gateway_ctx, third)
    await take_the_free_pool_but_released(gateway_ctx)
    reuse = await create_intent(gateway_ctx, merchant.id)
    assert reuse.deposit_address == first.deposit_address


async def take_the_free_pool_but_released(ctx: GatewayContext) -> None:
    """Mark every never-used free address as taken."""
    async with ctx.db.transaction() as session:
        await session.execute(
            update(DepositAddress)
            .where(DepositAddress.status == "free", DepositAddress.released_at.is_(None))
            .values(status="allocated")
        )
