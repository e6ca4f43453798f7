"""The webhook delivery worker against a real HTTP receiver on 127.0.0.1 and the real
queue table: signed bodies, retries, giving up, deletion, several workers, crashed
workers, the wake-up after commit, and disabling an endpoint that only ever failed."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from stablegate_gateway.context import GatewayContext
from stablegate_gateway.settings import GatewaySettings
from stablegate_gateway.webhooks.delivery import AttemptResult, WebhookDeliveryWorker
from stablegate_gateway.webhooks.models import WebhookDelivery, WebhookEndpoint
from stablegate_gateway.webhooks.service import DELIVERIES_QUEUED
from stablegate_gateway.webhooks.signing import verify_signature
from tests.fixtures.bus import eventually
from tests.fixtures.gateway import ApiMerchant, SettingsFactory
from tests.fixtures.payments import (
    ChainTx,
    Receiver,
    create_endpoint,
    create_intent,
    deliveries,
    fast_webhook_settings,
    rows,
)


@pytest.fixture
def gateway_settings(gateway_settings_factory: SettingsFactory) -> GatewaySettings:
    return fast_webhook_settings(gateway_settings_factory)


Feed = Any


async def delivery_states(ctx: GatewayContext) -> list[tuple[str, int]]:
    return [(d.status, d.attempts) for d in await deliveries(ctx)]


async def test_the_body_is_signed_as_sent_and_verifies_with_the_secret(
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    delivery_worker: WebhookDeliveryWorker,
) -> None:
    endpoint = await create_endpoint(gateway_ctx, merchant.id, webhook_receiver.url)
    intent = await create_intent(gateway_ctx, merchant.id)

    assert await delivery_worker.deliver_due() == 1

    [request] = webhook_receiver.requests
    verify_signature(endpoint.secret, request.headers["Stablegate-Signature"], request.body)
    event = json.loads(request.body)
    assert set(event) == {"id", "object", "type", "created_at", "data", "sequence"}
    assert (event["object"], event["type"], event["sequence"]) == (
        "event",
        "payment_intent.created",
        1,
    )
    assert event["data"]["object"]["id"] == intent.id
    assert event["data"]["object"]["status"] == "awaiting_payment"
    assert request.headers["Stablegate-Event-Id"] == event["id"]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "Stablegate-Webhooks/1.0"
    # The signature covers these exact bytes and no re-serialisation of them.
    reserialised = json.dumps(event).encode()
    assert reserialised != request.body
    try:
        verify_signature(endpoint.secret, request.headers["Stablegate-Signature"], reserialised)
    except ValueError:
        pass
    else:  # pragma: no cover - the assertion that matters
        raise AssertionError("a re-serialised body must not verify")
    assert await delivery_states(gateway_ctx) == [("succeeded", 1)]


async def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt(
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    running_delivery_worker: WebhookDeliveryWorker,
) -> None:
    webhook_receiver.statuses = [500, 500]
    await create_endpoint(gateway_ctx, merchant.id, webhook_receiver.url)
    await create_intent(gateway_ctx, merchant.id)

    async def delivered() -> bool:
        return await delivery_states(gateway_ctx) == [("succeeded", 3)]

    await eventually(delivered, timeout=10)
    assert len(webhook_receiver.requests) == 3
    assert len(set(webhook_receiver.event_ids())) == 1
    assert [r.headers["Stablegate-Delivery-Attempt"] for r in webhook_receiver.requests] == [
        "1",
        "2",
        "3",
    ]
    [row] = await deliveries(gateway_ctx)
    assert (row.last_status_code, row.last_error, row.locked_until) == (200, None, None)
    assert row.delivered_at is not None


async def test_after_the_last_attempt_the_delivery_fails(
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    running_delivery_worker: WebhookDeliveryWorker,
) -> None:
    max_attempts = gateway_ctx.settings.gateway.webhook_max_attempts
    webhook_receiver.statuses = [503] * 50
    await create_endpoint(gateway_ctx, merchant.id, webhook_receiver.url)
    await create_intent(gateway_ctx, merchant.id)

    async def given_up() -> bool:
        return await delivery_states(gateway_ctx) == [("failed", max_attempts)]

    await eventually(given_up, timeout=10)
    await asyncio.sleep(0.3)
    assert len(webhook_receiver.requests) == max_attempts
    [row] = await deliveries(gateway_ctx)
    assert row.last_status_code == 503
    assert row.last_error is not None
    assert row.last_error.startswith("HTTP 503: receiver failed")


async def test_a_redirect_or_an_unreachable_host_is_a_failed_attempt(
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    delivery_worker: WebhookDeliveryWorker,
) -> None:
    webhook_receiver.statuses = [302]
    await create_endpoint(gateway_ctx, merchant.id, webhook_receiver.url)
    await create_endpoint(gateway_ctx, merchant.id, "http://127.0.0.1:9/closed")
    await create_intent(gateway_ctx, merchant.id)

    assert await delivery_worker.deliver_due() == 2
    rows = await deliveries(gateway_ctx)
    assert sorted((d.status, d.attempts, d.last_status_code or 0) for d in rows) == [
        ("pending", 1, 0),
        ("pending", 1, 302),
    ]
    assert all(d.last_error for d in rows)


async def test_deleting_the_endpoint_stops_its_deliveries(
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    running_delivery_worker: WebhookDeliveryWorker,
    api: httpx.AsyncClient,
    transfer_feed: Feed,
) -> None:
    webhook_receiver.statuses = [500] * 1000
    endpoint = await create_endpoint(gateway_ctx, merchant.id, webhook_receiver.url)
    intent = await create_intent(gateway_ctx, merchant.id)
    await eventually(lambda: len(webhook_receiver.requests) >= 2, timeout=10)

    response = await api.delete(f"/v1/webhook_endpoints/{endpoint.id}", headers=merchant.headers)
    assert response.status_code == 200
    [row] = await deliveries(gateway_ctx)
    assert row.status == "canceled"
    await asyncio.sleep(0.2)  # let a post that was already in flight land
    seen = len(webhook_receiver.requests)
    await transfer_feed(ChainTx(intent.deposit_address, 25_000_000).event("confirmed", 1))
    await asyncio.sleep(0.5)  # ten poll intervals
    assert len(webhook_receiver.requests) == seen
    assert len(await deliveries(gateway_ctx)) == 1  # nothing queued for the paid event


async def test_an_endpoint_gets_only_the_types_it_enabled(
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    running_delivery_worker: WebhookDeliveryWorker,
    transfer_feed: Feed,
) -> None:
    await create_endpoint(gateway_ctx, merchant.id, webhook_receiver.url, ["payment_intent.paid"])
    intent = await create_intent(gateway_ctx, merchant.id)
    tx = ChainTx(intent.deposit_address, 25_000_000)
    await transfer_feed(tx.event("detected", 1))
    await transfer_feed(tx.event("confirmed", 2))

    await eventually(lambda: len(webhook_receiver.requests) == 1, timeout=10)
    await asyncio.sleep(0.2)
    [request] = webhook_receiver.requests
    event = json.loads(request.body)
    assert (event["type"], event["sequence"]) == ("payment_intent.paid", 3)
    assert event["data"]["object"]["amount_confirmed"] == "25.00"


async def test_a_commit_wakes_the_worker_without_waiting_for_the_poll(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, webhook_receiver: Receiver
) -> None:
    config = gateway_ctx.settings.gateway.model_copy(update={"webhook_poll_seconds": 60.0})
    slow_poller = WebhookDeliveryWorker(gateway_ctx.db, config)
    gateway_ctx.db.after_commit(slow_poller.kick, only_if=DELIVERIES_QUEUED)
    stop = asyncio.Event()
    task = asyncio.create_task(slow_poller.run(stop))
    try:
        await asyncio.sleep(0.2)  # the worker is now asleep for a minute, unless kicked
        await create_intent(gateway_ctx, merchant.id)  # no endpoint yet: nothing to deliver
        assert not slow_poller._wake.is_set()  # so that commit did not wake it
        await create_endpoint(gateway_ctx, merchant.id, webhook_receiver.url)
        started = time.monotonic()
        await create_intent(gateway_ctx, merchant.id)
        await eventually(lambda: len(webhook_receiver.requests) == 1, timeout=5)
        assert time.monotonic() - started < 2
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await slow_poller.close()


async def test_two_workers_deliver_every_event_once(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, webhook_receiver: Receiver
) -> None:
    webhook_receiver.delay_seconds = 0.02
    await create_endpoint(gateway_ctx, merchant.id, webhook_receiver.url)
    for _ in range(24):
        await create_intent(gateway_ctx, merchant.id)
    config = gateway_ctx.settings.gateway.model_copy(update={"webhook_workers": 5})
    one = WebhookDeliveryWorker(gateway_ctx.db, config)
    two = WebhookDeliveryWorker(gateway_ctx.db, config)
    try:
        while sum(await asyncio.gather(one.deliver_due(), two.deliver_due())):
            pass
    finally:
        await one.close()
        await two.close()

    ids = webhook_receiver.event_ids()
    assert len(ids) == 24
    assert len(set(ids)) == 24
    assert {s for s, _ in await delivery_states(gateway_ctx)} == {"succeeded"}


async def test_a_delivery_whose_worker_died_is_retried_after_its_lease(
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    delivery_worker: WebhookDeliveryWorker,
) -> None:
    await create_endpoint(gateway_ctx, merchant.id, webhook_receiver.url)
    await create_intent(gateway_ctx, merchant.id)
    crashed = WebhookDeliveryWorker(gateway_ctx.db, gateway_ctx.settings.gateway)
    try:
        [claimed] = await crashed.claim(10)  # ... and the process dies before posting
        assert await delivery_worker.claim(10) == []  # leased: nobody else takes it meanwhile

        async with gateway_ctx.db.transaction() as session:
            await session.execute(
                update(WebhookDelivery).values(
                    locked_until=datetime.now(UTC) - timedelta(seconds=1)
                )
            )
        assert await delivery_worker.deliver_due() == 1
        assert await delivery_states(gateway_ctx) == [("succeeded", 1)]

        # The dead worker's late result (had it posted after all) changes nothing.
        await crashed.record(claimed, AttemptResult(False, None, "timed out", 10.0))
        assert await delivery_states(gateway_ctx) == [("succeeded", 1)]
    finally:
        await crashed.close()
    assert len(webhook_receiver.requests) == 1


async def test_an_endpoint_failing_to_the_last_attempt_is_disabled_and_an_event_says_so(
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    running_delivery_worker: WebhookDeliveryWorker,
    api: httpx.AsyncClient,
) -> None:
    max_attempts = gateway_ctx.settings.gateway.webhook_max_attempts
    webhook_receiver.statuses = [500] * 1000
    failing = await create_endpoint(gateway_ctx, merchant.id, webhook_receiver.url)
    # A second endpoint that listens for exactly this announcement.
    watcher = await create_endpoint(
        gateway_ctx, merchant.id, webhook_receiver.url + "?ops", ["webhook_endpoint.disabled"]
    )
    await create_intent(gateway_ctx, merchant.id)
    await create_intent(gateway_ctx, merchant.id)

    async def disabled() -> bool:
        one = await api.get(f"/v1/webhook_endpoints/{failing.id}", headers=merchant.headers)
        return bool(one.json()["status"] == "disabled")

    await eventually(disabled, timeout=15)
    endpoint = (
        await api.get(f"/v1/webhook_endpoints/{failing.id}", headers=merchant.headers)
    ).json()
    assert endpoint["disabled_reason"].startswith("every delivery failed from ")
    states = sorted(
        (d.status, d.attempts) for d in await deliveries(gateway_ctx) if d.endpoint_id == failing.id
    )
    # The first delivery to give up disabled the endpoint; the other stopped with it.
    assert states[-1] == ("failed", max_attempts)
    assert {s for s, _ in states} <= {"failed", "canceled"}

    events = (
        await api.get("/v1/events?type=webhook_endpoint.disabled", headers=merchant.headers)
    ).json()["data"]
    assert [(e["data"]["object"]["id"], e["sequence"]) for e in events] == [(failing.id, 1)]
    assert events[0]["data"]["object"]["status"] == "disabled"
    to_watcher = [d for d in await deliveries(gateway_ctx) if d.endpoint_id == watcher.id]
    assert [d.event_id for d in to_watcher] == [events[0]["id"]]


async def test_an_endpoint_that_took_a_delivery_meanwhile_stays_enabled(
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    delivery_worker: WebhookDeliveryWorker,
) -> None:
    max_attempts = gateway_ctx.settings.gateway.webhook_max_attempts
    endpoint = await create_endpoint(gateway_ctx, merchant.id, webhook_receiver.url)
    await create_intent(gateway_ctx, merchant.id)
    webhook_receiver.statuses = [500]
    assert await delivery_worker.deliver_due() == 1
    [failing] = await deliveries(gateway_ctx)

    async def reschedule(**values: Any) -> None:
        async with gateway_ctx.db.transaction() as session:
            await session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id == failing.id).values(**values)
            )

    # Another event reaches the endpoint after the failing delivery's first attempt ...
    await reschedule(next_attempt_at=datetime.now(UTC) + timedelta(hours=1))
    await create_intent(gateway_ctx, merchant.id)
    assert await delivery_worker.deliver_due() == 1
    # ... so when the failing delivery uses its last attempt, the endpoint is not dead.
    await reschedule(attempts=max_attempts - 1, next_attempt_at=datetime.now(UTC))
    webhook_receiver.statuses = [500]
    assert await delivery_worker.deliver_due() == 1

    states = sorted((d.status, d.attempts) for d in await deliveries(gateway_ctx))
    assert states == [("failed", max_attempts), ("succeeded", 1)]
    [stored] = await rows(gateway_ctx, WebhookEndpoint)
    assert (stored.id, stored.status) == (endpoint.id, "enabled")


async def test_the_url_policy_is_checked_again_at_delivery_time(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, webhook_receiver: Receiver
) -> None:
    """An endpoint accepted earlier (or whose name now resolves elsewhere) gets nothing
    once its address is private and private URLs are not allowed."""
    await create_endpoint(gateway_ctx, merchant.id, webhook_receiver.url)  # allowed here
    await create_intent(gateway_ctx, merchant.id)
    config = gateway_ctx.settings.gateway.model_copy(update={"webhook_allow_private_urls": False})
    strict = WebhookDeliveryWorker(gateway_ctx.db, config)
    try:
        assert await strict.deliver_due() == 1
    finally:
        await strict.close()
    assert webhook_receiver.requests == []
    [row] = await deliveries(gateway_ctx)
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, None)
    assert row.last_error is not None
    assert "private, loopback or link-local" in row.last_error
