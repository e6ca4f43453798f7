"""Many creations at once: every intent gets a deposit address of its own, including
while the pool runs dry and is refilled under contention, and the pool job tops up."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from stablegate_common.bus import OutboxMessage
from stablegate_gateway.addresses.models import DepositAddress
from stablegate_gateway.addresses.service import ensure_pool
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.settings import GatewaySettings
from tests.fixtures.gateway import ApiMerchant, SettingsFactory, intent_body, written

CONCURRENT = 200
BATCH = 16


@pytest.fixture
def gateway_settings(gateway_settings_factory: SettingsFactory) -> GatewaySettings:
    settings = gateway_settings_factory(address_pool_batch=BATCH, address_pool_min_free=50)
    settings.database.pool_size = 20
    return settings


async def provisioned_indexes(ctx: GatewayContext) -> list[tuple[int, int]]:
    async with ctx.db.sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.routing_key == "address.provisioned")
            .order_by(OutboxMessage.id)
        )
        return [(r.body["data"]["first_index"], len(r.body["data"]["addresses"])) for r in rows]


@pytest.mark.parametrize("derived_ahead", [False, True], ids=["empty pool", "pool derived ahead"])
async def test_concurrent_creations_get_distinct_addresses(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, derived_ahead: bool
) -> None:
    if derived_ahead:
        async with gateway_ctx.db.transaction() as session:
            await ensure_pool(session, gateway_ctx, "evm")

    async def create(n: int) -> httpx.Response:
        return await api.post(
            "/v1/payment_intents",
            json=intent_body(amount=f"{n + 1}.00", network="ethereum" if n % 2 else "bsc"),
            headers=merchant.headers,
        )

    responses = await asyncio.gather(*(create(n) for n in range(CONCURRENT)))
    assert [r.status_code for r in responses] == [200] * CONCURRENT
    addresses = {r.json()["deposit_address"] for r in responses}
    assert len(addresses) == CONCURRENT
    async with gateway_ctx.db.sessions() as session:
        intents = list(await session.scalars(select(PaymentIntent)))
        allocated = list(
            await session.scalars(
                select(DepositAddress).where(DepositAddress.status == "allocated")
            )
        )
    assert len(intents) == CONCURRENT == len(allocated)
    assert {a.intent_id for a in allocated} == {i.id for i in intents}
    assert len({i.deposit_address_id for i in intents}) == CONCURRENT
    # Waiters re-check the pool after taking the lock, so no batch was derived twice.
    batches = -(-CONCURRENT // BATCH)
    assert await provisioned_indexes(gateway_ctx) == [(i * BATCH, BATCH) for i in range(batches)]
    assert (await written(gateway_ctx)).addresses == batches * BATCH


async def test_ensure_pool_derives_ahead_and_announces_in_batches(
    gateway_ctx: GatewayContext,
) -> None:
    async with gateway_ctx.db.transaction() as session:
        assert await ensure_pool(session, gateway_ctx, "evm") == 4 * BATCH  # 50 wanted
        assert await ensure_pool(session, gateway_ctx, "tron") == 0  # no Tron xpub
    assert await provisioned_indexes(gateway_ctx) == [(i * BATCH, BATCH) for i in range(4)]
    async with gateway_ctx.db.transaction() as session:
        assert await ensure_pool(session, gateway_ctx, "evm") == 0


async def test_concurrent_top_ups_do_not_derive_twice(gateway_ctx: GatewayContext) -> None:
    async def top_up() -> int:
        async with gateway_ctx.db.transaction() as session:
            return await ensure_pool(session, gateway_ctx, "evm")

    results = await asyncio.gather(*(top_up() for _ in range(5)))
    assert sorted(results) == [0, 0, 0, 0, 4 * BATCH]
    assert (await written(gateway_ctx)).addresses == 4 * BATCH
