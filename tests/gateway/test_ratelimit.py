"""Rate limits per API key: a token bucket in PostgreSQL shared by every replica, 429 with
`Retry-After` and the `RateLimit-*` headers, per-merchant and per-key overrides."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, text, update

from stablegate_common.db import Database
from stablegate_gateway.app import create_app
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.merchants.models import ApiKey
from stablegate_gateway.ratelimit.service import RateLimitDecision, rule_for, take
from stablegate_gateway.settings import GatewayConfig, GatewaySettings, RateLimitRule
from tests.fixtures.gateway import ApiMerchant, MerchantFactory, SettingsFactory

BURST = 5
SLOW = 0.01  # tokens per second: no refill worth speaking of during a test


@pytest.fixture
def gateway_settings(
    request: pytest.FixtureRequest, gateway_settings_factory: SettingsFactory
) -> GatewaySettings:
    overrides = getattr(request, "param", {})
    return gateway_settings_factory(rate_limit_burst=BURST, rate_limit_per_second=SLOW, **overrides)


async def test_a_key_past_its_burst_gets_429_with_retry_after(
    api: httpx.AsyncClient, merchant: ApiMerchant, merchant_factory: MerchantFactory
) -> None:
    allowed = [await api.get("/v1/payment_intents", headers=merchant.headers) for _ in range(BURST)]
    assert [r.status_code for r in allowed] == [200] * BURST
    assert [r.headers["RateLimit-Remaining"] for r in allowed] == ["4", "3", "2", "1", "0"]
    assert {r.headers["RateLimit-Limit"] for r in allowed} == {str(BURST)}
    assert all("Retry-After" not in r.headers for r in allowed)

    refused = await api.post("/v1/payment_intents", json={}, headers=merchant.headers)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "rate_limit_error",
        "rate_limit_exceeded",
        None,
    )
    assert error["request_id"] == refused.headers["Request-Id"]
    retry_after = int(refused.headers["Retry-After"])
    assert retry_after == math.ceil(1 / SLOW)  # one token, at 0.01 per second
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert int(refused.headers["RateLimit-Reset"]) >= retry_after

    # Another merchant's key has a bucket of its own.
    other = await merchant_factory("Other Shop")
    assert (await api.get("/v1/payment_intents", headers=other.headers)).status_code == 200


async def test_unauthenticated_requests_do_not_spend_a_keys_tokens(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    for _ in range(BURST * 2):
        response = await api.get("/v1/payment_intents", headers={"Authorization": "Bearer sk_x"})
        assert response.status_code == 401
        assert "RateLimit-Limit" not in response.headers
    assert (await api.get("/v1/payment_intents", headers=merchant.headers)).status_code == 200


@pytest.fixture
async def replica(gateway_ctx: GatewayContext) -> AsyncIterator[httpx.AsyncClient]:
    """A second gateway process in all but name: its own app and connection pool."""
    db = Database(gateway_ctx.settings.database)
    other = GatewayContext(gateway_ctx.settings, gateway_ctx.registry, db)
    transport = httpx.ASGITransport(app=create_app(other))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://replica.test") as client:
            yield client
    finally:
        await db.dispose()


async def test_replicas_share_one_bucket_per_key(
    api: httpx.AsyncClient, replica: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    clients = [api, replica] * (BURST + 3)
    responses = await asyncio.gather(
        *(c.get("/v1/networks", headers=merchant.headers) for c in clients)
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == BURST
    assert statuses.count(429) == len(clients) - BURST


async def test_tokens_come_back_at_the_configured_rate(
    gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    rule = RateLimitRule(per_second=20, burst=2)

    async def three() -> list[bool]:
        async with gateway_ctx.db.autocommit() as conn:
            taken = [await take(conn, merchant.api_key_id, merchant.id, rule) for _ in range(3)]
        return [d is not None and d.allowed for d in taken]

    assert await three() == [True, True, False]
    await asyncio.sleep(0.15)  # three tokens' worth, capped at the burst of two
    assert await three() == [True, True, False]


async def test_a_revoked_or_unknown_key_takes_nothing(
    gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    rule = RateLimitRule(per_second=20, burst=2)
    async with gateway_ctx.db.autocommit() as conn:
        assert await take(conn, "key_unknown", merchant.id, rule) is None
        assert await take(conn, merchant.api_key_id, "mer_someone_else", rule) is None
        await conn.execute(
            update(ApiKey).where(ApiKey.id == merchant.api_key_id).values(revoked_at=func.now())
        )
        assert await take(conn, merchant.api_key_id, merchant.id, rule) is None
        buckets = await conn.scalar(text("SELECT count(*) FROM rate_limit_buckets"))
    assert buckets == 0


def test_overrides_by_key_win_over_the_merchants_and_the_default() -> None:
    config = GatewayConfig(
        rate_limit_per_second=100,
        rate_limit_burst=200,
        rate_limit_overrides={
            "mer_big": {"per_second": 500, "burst": 1000},
            "key_tight": {"per_second": 1, "burst": 2},
        },
    )
    assert rule_for(config, "mer_small", "key_a") == RateLimitRule(per_second=100, burst=200)
    assert rule_for(config, "mer_big", "key_a") == RateLimitRule(per_second=500, burst=1000)
    assert rule_for(config, "mer_big", "key_tight") == RateLimitRule(per_second=1, burst=2)


@pytest.mark.parametrize(
    ("tokens", "remaining", "reset", "retry_after"),
    [
        (199.0, 199, 1, 1),  # one spent of 200 at 100/s
        (0.0, 0, 2, 1),
        (0.5, 0, 2, 1),
        (-0.0, 0, 2, 1),
    ],
)
def test_headers_round_towards_the_safe_side(
    tokens: float, remaining: int, reset: int, retry_after: int
) -> None:
    decision = RateLimitDecision(allowed=False, limit=200, per_second=100, tokens=tokens)
    assert (decision.remaining, decision.reset_seconds, decision.retry_after_seconds) == (
        remaining,
        reset,
        retry_after,
    )
    assert decision.headers()["Retry-After"] == str(retry_after)


@pytest.mark.parametrize("gateway_settings", [{"rate_limit_enabled": False}], indirect=True)
async def test_limits_can_be_switched_off(api: httpx.AsyncClient, merchant: ApiMerchant) -> None:
    for _ in range(BURST + 2):
        response = await api.get("/v1/networks", headers=merchant.headers)
        assert response.status_code == 200
        assert "RateLimit-Limit" not in response.headers
