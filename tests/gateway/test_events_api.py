"""`GET /v1/events` filters and the per-object `sequence` of events, over the in-process
app on a migrated schema."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from stablegate_gateway.settings import GatewaySettings
from tests.fixtures.gateway import ApiMerchant, SettingsFactory, intent_body
from tests.fixtures.payments import fast_webhook_settings


@pytest.fixture
def gateway_settings(gateway_settings_factory: SettingsFactory) -> GatewaySettings:
    return fast_webhook_settings(gateway_settings_factory)


async def ids(api: httpx.AsyncClient, merchant: ApiMerchant, query: str) -> list[str]:
    response = await api.get(f"/v1/events?{query}", headers=merchant.headers)
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()["data"]]


async def test_filters_by_type_family_object_and_time(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    first = (
        await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    ).json()
    await asyncio.sleep(0.01)
    middle = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    await asyncio.sleep(0.01)
    await api.post(f"/v1/payment_intents/{first['id']}/cancel", headers=merchant.headers)
    endpoint = (
        await api.post(
            "/v1/webhook_endpoints", json={"url": "http://127.0.0.1:9/h"}, headers=merchant.headers
        )
    ).json()
    await api.post(f"/v1/webhook_endpoints/{endpoint['id']}/test", headers=merchant.headers)

    everything = (await api.get("/v1/events", headers=merchant.headers)).json()["data"]
    assert [e["type"] for e in everything] == [
        "webhook_endpoint.test",
        "payment_intent.canceled",
        "payment_intent.created",
    ]
    test_event, canceled, created = (e["id"] for e in everything)
    assert await ids(api, merchant, "type=payment_intent.*") == [canceled, created]
    assert await ids(api, merchant, "type=webhook_endpoint.*") == [test_event]
    assert await ids(api, merchant, "type=webhook_endpoint.test") == [test_event]
    assert await ids(api, merchant, f"object_id={endpoint['id']}") == [test_event]
    assert await ids(api, merchant, f"created_lte={middle}") == [created]
    assert await ids(api, merchant, f"created_gte={middle}") == [test_event, canceled]
    assert await ids(api, merchant, f"created_gte={middle}&type=payment_intent.*") == [canceled]
    assert await ids(api, merchant, f"ending_before={created}&limit=1") == [canceled]


@pytest.mark.parametrize("value", ["payment_intent.done", "nothing.*", "*", ""])
async def test_an_unknown_type_is_refused_naming_it(
    api: httpx.AsyncClient, merchant: ApiMerchant, value: str
) -> None:
    response = await api.get(f"/v1/events?type={value}", headers=merchant.headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("type", "parameter_invalid")


async def test_every_event_about_an_object_carries_its_next_sequence(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    intent = (
        await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    ).json()
    await api.post(f"/v1/payment_intents/{intent['id']}/cancel", headers=merchant.headers)
    endpoint = (
        await api.post(
            "/v1/webhook_endpoints", json={"url": "http://127.0.0.1:9/h"}, headers=merchant.headers
        )
    ).json()
    for _ in range(3):
        await api.post(f"/v1/webhook_endpoints/{endpoint['id']}/test", headers=merchant.headers)

    async def sequences(object_id: str) -> list[int]:
        response = await api.get(f"/v1/events?object_id={object_id}", headers=merchant.headers)
        return [e["sequence"] for e in reversed(response.json()["data"])]

    assert await sequences(intent["id"]) == [1, 2]
    assert await sequences(endpoint["id"]) == [1, 2, 3]
