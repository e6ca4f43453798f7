"""The scheduled jobs on a migrated schema: expiry, address release, pool top-up,
housekeeping, and their registration with the PostgreSQL-backed scheduler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from stablegate_common.scheduling import Scheduler
from stablegate_gateway.addresses.jobs import maintain_address_pool, release_cooled_addresses
from stablegate_gateway.addresses.models import DepositAddress
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.idempotency.models import COMPLETED, IdempotencyKey
from stablegate_gateway.intents.jobs import expire_due_intents
from stablegate_gateway.payments_wiring import (
    ADDRESS_POOL_JOB,
    EXPIRY_JOB,
    HOUSEKEEPING_JOB,
    build_scheduler,
)
from stablegate_gateway.settings import GatewaySettings
from tests.fixtures.gateway import ApiMerchant, SettingsFactory
from tests.fixtures.payments import (
    ChainTx,
    count,
    create_intent,
    fast_webhook_settings,
    load_intent,
    merchant_events,
    rows,
)


@pytest.fixture
def gateway_settings(gateway_settings_factory: SettingsFactory) -> GatewaySettings:
    return fast_webhook_settings(gateway_settings_factory)


USDT = 1_000_000
Feed = Any


async def address_of(ctx: GatewayContext, address_id: str) -> DepositAddress:
    [address] = await rows(ctx, DepositAddress, DepositAddress.id == address_id)
    assert isinstance(address, DepositAddress)
    return address


async def test_expiry_expires_due_intents_and_cools_their_addresses(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    unpaid = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    partial = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    in_flight = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    not_due = await create_intent(gateway_ctx, merchant.id, expires_in=3600)
    await transfer_feed(ChainTx(partial.deposit_address, 5 * USDT).event("confirmed", 1))
    await transfer_feed(ChainTx(in_flight.deposit_address, 5 * USDT).event("detected", 1))
    at = datetime.now(UTC) + timedelta(minutes=5)

    assert await expire_due_intents(gateway_ctx, now=at) == 2
    assert await expire_due_intents(gateway_ctx, now=at) == 0  # nothing left to do

    expired = await load_intent(gateway_ctx, unpaid.id)
    assert (expired.status, expired.version) == ("expired", 2)
    assert (await merchant_events(gateway_ctx, unpaid.id))[-1].type == "payment_intent.expired"
    underpaid = await load_intent(gateway_ctx, partial.id)
    assert (underpaid.status, underpaid.exception) == ("requires_action", "underpaid")
    assert (await load_intent(gateway_ctx, in_flight.id)).status == "confirming"
    assert (await load_intent(gateway_ctx, not_due.id)).status == "awaiting_payment"

    cooldown = timedelta(seconds=gateway_ctx.settings.gateway.address_cooldown_seconds)
    for intent in (unpaid, partial):
        address = await address_of(gateway_ctx, intent.deposit_address_id)
        assert (address.status, address.cooling_until) == ("cooling", at + cooldown)
    for intent in (in_flight, not_due):
        assert (await address_of(gateway_ctx, intent.deposit_address_id)).status == "allocated"


async def test_a_confirming_intent_past_expiry_settles_when_its_transfer_does(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    tx = ChainTx(intent.deposit_address, 5 * USDT)
    await transfer_feed(tx.event("detected", 1))
    # Expiry passes while the transfer is confirming (the row's clock is moved back).
    async with gateway_ctx.db.transaction() as session:
        row = await session.get(type(intent), intent.id)
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    await transfer_feed(tx.event("confirmed", 2))

    after = await load_intent(gateway_ctx, intent.id)
    assert (after.status, after.exception) == ("requires_action", "underpaid")
    address = await address_of(gateway_ctx, intent.deposit_address_id)
    assert address.status == "cooling"


async def test_cooled_addresses_of_ended_intents_return_to_the_pool(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    ended = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    reorged = await create_intent(gateway_ctx, merchant.id, expires_in=3600)
    tx = ChainTx(reorged.deposit_address, 25 * USDT)
    await transfer_feed(tx.event("confirmed", 1))  # paid: its address starts cooling
    await transfer_feed(tx.event("detected", 2))  # reorged and mined again: confirming, not ended
    now = datetime.now(UTC)
    await expire_due_intents(gateway_ctx, now=now + timedelta(minutes=5))

    cooldown = timedelta(seconds=gateway_ctx.settings.gateway.address_cooldown_seconds)
    assert await release_cooled_addresses(gateway_ctx, now=now + timedelta(minutes=10)) == 0
    after_cooldown = now + cooldown + timedelta(minutes=10)
    assert await release_cooled_addresses(gateway_ctx, now=after_cooldown) == 1

    freed = await address_of(gateway_ctx, ended.deposit_address_id)
    assert (freed.status, freed.intent_id, freed.cooling_until) == ("free", None, None)
    kept = await address_of(gateway_ctx, reorged.deposit_address_id)
    assert (kept.status, kept.intent_id) == ("cooling", reorged.id)

    # A payment to the freed address now belongs to nobody.
    late = ChainTx(ended.deposit_address, 1 * USDT)
    await transfer_feed(late.event("confirmed", 1))
    assert (await load_intent(gateway_ctx, ended.id)).amount_confirmed_base_units == 0


async def test_the_pool_is_topped_up(gateway_ctx: GatewayContext) -> None:
    minimum = gateway_ctx.settings.gateway.address_pool_min_free
    await maintain_address_pool(gateway_ctx)
    free = await count(gateway_ctx, DepositAddress, DepositAddress.status == "free")
    assert free >= minimum


@pytest.fixture
async def scheduler(gateway_ctx: GatewayContext) -> AsyncIterator[Scheduler]:
    jobs = build_scheduler(gateway_ctx)
    try:
        yield jobs
    finally:
        await jobs.shutdown()


async def test_the_jobs_run_under_the_scheduler(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, scheduler: Scheduler
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    async with gateway_ctx.db.transaction() as session:
        row = await session.get(type(intent), intent.id)
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)

    assert await scheduler.run_now(EXPIRY_JOB) == "success"
    assert await scheduler.run_now(ADDRESS_POOL_JOB) == "success"
    assert (await load_intent(gateway_ctx, intent.id)).status == "expired"


async def test_housekeeping_runs_under_the_scheduler(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, scheduler: Scheduler
) -> None:
    async with gateway_ctx.db.transaction() as session:
        await session.execute(
            insert(IdempotencyKey).values(
                merchant_id=merchant.id,
                key="two-days-old",
                fingerprint="f" * 64,
                status=COMPLETED,
                created_at=datetime.now(UTC) - timedelta(days=2),
            )
        )
    assert await scheduler.run_now(HOUSEKEEPING_JOB) == "success"
    assert await count(gateway_ctx, IdempotencyKey) == 0
