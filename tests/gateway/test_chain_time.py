""" "Paid in time" is chain time: a payment mined before the intent's expiry pays it even
when the gateway hears of it after the expiry (watcher lag, an outage, the expiry job
running first); one mined after the expiry, beyond the clock-skew allowance, is late.
Through the gateway's `transfer.*` consumer and the expiry job, on a migrated schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from stablegate_gateway.addresses.models import DepositAddress
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.intents.jobs import expire_due_intents
from stablegate_gateway.intents.models import PaymentIntent
from tests.fixtures.gateway import ApiMerchant
from tests.fixtures.payments import ChainTx, create_intent, load_intent

USDT = 1_000_000
Feed = Any


def shown(intent: PaymentIntent) -> tuple[str, str | None, int, int]:
    return (
        intent.status,
        intent.exception,
        intent.amount_pending_base_units,
        intent.amount_confirmed_base_units,
    )


async def move_expiry(ctx: GatewayContext, intent_id: str, expires_at: datetime) -> None:
    """Let the intent have been created an hour before `expires_at`, holding its address."""
    created_at = expires_at - timedelta(hours=1)
    async with ctx.db.transaction() as session:
        row = await session.get(PaymentIntent, intent_id)
        assert row is not None
        row.created_at, row.expires_at = created_at, expires_at
        address = await session.get(DepositAddress, row.deposit_address_id)
        assert address is not None
        address.allocated_at = created_at


async def test_a_payment_mined_before_expiry_but_heard_of_after_the_expiry_job_is_paid(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    # The watcher lags: the expiry job runs before the gateway hears of the payment.
    assert await expire_due_intents(gateway_ctx, now=intent.expires_at + timedelta(minutes=5))
    assert (await load_intent(gateway_ctx, intent.id)).status == "expired"

    mined = ChainTx(
        intent.deposit_address, 25 * USDT, block_timestamp=intent.expires_at - timedelta(seconds=20)
    )
    await transfer_feed(mined.event("detected", 1))
    assert (await load_intent(gateway_ctx, intent.id)).status == "confirming"
    await transfer_feed(mined.event("confirmed", 2))

    after = await load_intent(gateway_ctx, intent.id)
    assert shown(after) == ("paid", None, 0, 25 * USDT)
    assert after.paid_at is not None


async def test_a_payment_mined_in_time_first_heard_of_as_confirmed_after_expiry_is_paid(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    expires_at = datetime.now(UTC) - timedelta(minutes=3)
    await move_expiry(gateway_ctx, intent.id, expires_at)

    tx = ChainTx(
        intent.deposit_address, 25 * USDT, block_timestamp=expires_at - timedelta(seconds=30)
    )
    await transfer_feed(tx.event("confirmed", 1))

    assert shown(await load_intent(gateway_ctx, intent.id)) == ("paid", None, 0, 25 * USDT)


async def test_a_payment_mined_after_expiry_beyond_the_skew_is_paid_late(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    skew = timedelta(seconds=gateway_ctx.settings.gateway.attribution_skew_seconds)
    await move_expiry(gateway_ctx, intent.id, datetime.now(UTC) - skew - timedelta(seconds=30))
    expires_at = (await load_intent(gateway_ctx, intent.id)).expires_at

    just_within = ChainTx(intent.deposit_address, 5 * USDT, block_timestamp=expires_at + skew / 2)
    late = ChainTx(
        intent.deposit_address,
        20 * USDT,
        log_index=1,
        block_timestamp=expires_at + skew + timedelta(seconds=1),
    )
    await transfer_feed(late.event("confirmed", 1))
    assert shown(await load_intent(gateway_ctx, intent.id)) == (
        "requires_action",
        "paid_late",
        0,
        20 * USDT,
    )
    # A transfer within the allowance was in time: the intent was funded before its end.
    await transfer_feed(just_within.event("confirmed", 1))
    assert shown(await load_intent(gateway_ctx, intent.id)) == ("paid", None, 0, 25 * USDT)


async def test_a_transfer_still_confirming_at_expiry_is_left_to_settle_and_pays(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    """The expiry passed before the gateway heard of a payment mined in time; the expiry
    job then finds it confirming and must neither expire it nor leave it underpaid."""
    intent = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    expires_at = datetime.now(UTC) - timedelta(minutes=3)
    await move_expiry(gateway_ctx, intent.id, expires_at)
    tx = ChainTx(
        intent.deposit_address, 25 * USDT, block_timestamp=expires_at - timedelta(seconds=5)
    )
    await transfer_feed(tx.event("detected", 1))

    assert await expire_due_intents(gateway_ctx) == 0
    assert shown(await load_intent(gateway_ctx, intent.id)) == ("confirming", None, 25 * USDT, 0)

    await transfer_feed(tx.event("confirmed", 2))
    assert shown(await load_intent(gateway_ctx, intent.id)) == ("paid", None, 0, 25 * USDT)
