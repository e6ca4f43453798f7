"""The whole gateway process (`app.build_service`) with the payments side plugged in: a
`transfer.confirmed` published on the real RabbitMQ exchange pays an intent created over
HTTP, and the merchant's receiver gets the signed `payment_intent.paid` webhook."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from stablegate_common.config import HttpSettings
from stablegate_gateway.app import CONSUMERS, build_service
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.settings import GatewaySettings
from stablegate_gateway.transfers.consumers import CONSUMER
from stablegate_gateway.webhooks.signing import verify_signature
from tests.fixtures.bus import BusFactory, delete_bus_topology, eventually
from tests.fixtures.gateway import ApiMerchant, SettingsFactory
from tests.fixtures.payments import (
    ChainTx,
    Receiver,
    fast_webhook_settings,
    load_intent,
)


@pytest.fixture
def gateway_settings(gateway_settings_factory: SettingsFactory) -> GatewaySettings:
    return fast_webhook_settings(gateway_settings_factory)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def service_url(
    gateway_ctx: GatewayContext, gateway_settings: GatewaySettings
) -> AsyncIterator[str]:
    """The gateway running as it does in production, on the test's schema and exchange."""
    port = free_port()
    settings = gateway_settings.model_copy(update={"http": HttpSettings(port=port)})
    runner = build_service(settings)
    task = asyncio.create_task(runner.run())
    url = f"http://127.0.0.1:{port}"
    loop = asyncio.get_running_loop()
    try:
        async with httpx.AsyncClient(base_url=url) as client:

            async def ready() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout=20)
        yield url
    finally:
        runner.stop.set()
        assert await asyncio.wait_for(task, 30) == 0
        for sig in (signal.SIGTERM, signal.SIGINT):  # the runner installed its own
            loop.remove_signal_handler(sig)
        exchange = settings.bus.exchange
        await delete_bus_topology(
            settings.bus.url.get_secret_value(),
            exchanges=[exchange, f"{exchange}.dlx"],
            queues=[f"{exchange}.gateway.{c.name}" for c in CONSUMERS]
            + [f"{exchange}.gateway.{CONSUMER}", f"{exchange}.dlq"],
        )


async def test_a_confirmed_transfer_on_the_bus_ends_in_a_signed_paid_webhook(
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    service_url: str,
    bus_factory: BusFactory,
) -> None:
    async with httpx.AsyncClient(base_url=service_url, headers=merchant.headers) as api:
        endpoint = (
            await api.post(
                "/v1/webhook_endpoints",
                json={"url": webhook_receiver.url, "enabled_events": ["payment_intent.paid"]},
            )
        ).json()
        intent: dict[str, Any] = (
            await api.post(
                "/v1/payment_intents",
                json={"amount": "25.00", "currency": "USDT", "network": "ethereum"},
            )
        ).json()
    watcher = await bus_factory(service="watcher-ethereum")
    tx = ChainTx(intent["deposit_address"].lower(), 25_000_000)
    confirmed = tx.event("confirmed", 1)
    await watcher.publish([confirmed, confirmed])  # at least once: the inbox dedupes

    await eventually(lambda: len(webhook_receiver.requests) >= 1, timeout=20)
    await asyncio.sleep(0.5)  # room for a wrong second webhook from the duplicate
    [request] = webhook_receiver.requests
    verify_signature(endpoint["secret"], request.headers["Stablegate-Signature"], request.body)
    event = json.loads(request.body)
    assert event["type"] == "payment_intent.paid"
    assert event["data"]["object"]["id"] == intent["id"]
    assert event["data"]["object"]["amount_confirmed"] == "25.00"
    stored = await load_intent(gateway_ctx, intent["id"])
    assert (stored.status, stored.amount_confirmed_base_units) == ("paid", 25_000_000)
