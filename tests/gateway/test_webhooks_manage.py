"""Managing webhook endpoints over the API with a real delivery worker and receiver:
rolling the secret (both secrets sign during the overlap, only the new one after), the
test event, the delivery log, manual redelivery, and disabling / enabling."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from stablegate_gateway.settings import GatewaySettings
from stablegate_gateway.webhooks.delivery import WebhookDeliveryWorker
from stablegate_gateway.webhooks.signing import InvalidSignature, verify_signature
from tests.fixtures.bus import eventually
from tests.fixtures.gateway import ApiMerchant, MerchantFactory, SettingsFactory, intent_body
from tests.fixtures.payments import Receiver, fast_webhook_settings


@pytest.fixture
def gateway_settings(gateway_settings_factory: SettingsFactory) -> GatewaySettings:
    return fast_webhook_settings(gateway_settings_factory)


async def new_endpoint(
    api: httpx.AsyncClient, merchant: ApiMerchant, url: str, **fields: Any
) -> dict[str, Any]:
    response = await api.post(
        "/v1/webhook_endpoints", json={"url": url, **fields}, headers=merchant.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def verifies(secret: str, request: Any) -> bool:
    try:
        verify_signature(secret, request.headers["Stablegate-Signature"], request.body)
    except InvalidSignature:
        return False
    return True


async def test_rolled_secrets_overlap_then_only_the_new_one_signs(
    api: httpx.AsyncClient,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    delivery_worker: WebhookDeliveryWorker,
) -> None:
    endpoint = await new_endpoint(api, merchant, webhook_receiver.url)
    old_secret = endpoint["secret"]
    path = f"/v1/webhook_endpoints/{endpoint['id']}"

    rolled = await api.post(f"{path}/roll_secret", json={"expires_in": 2}, headers=merchant.headers)
    assert rolled.status_code == 200, rolled.text
    new_secret = rolled.json()["secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != old_secret
    overlap_ends = datetime.fromisoformat(rolled.json()["previous_secret_expires_at"])
    shown = (await api.get(path, headers=merchant.headers)).json()
    assert "secret" not in shown
    assert shown["previous_secret_expires_at"] == rolled.json()["previous_secret_expires_at"]

    await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    assert await delivery_worker.deliver_due() == 1
    during = webhook_receiver.requests[-1]
    assert during.headers["Stablegate-Signature"].count("v1=") == 2
    assert verifies(new_secret, during)
    assert verifies(old_secret, during)  # receivers not yet updated keep working

    await asyncio.sleep(max(0.0, (overlap_ends - datetime.now(UTC)).total_seconds()) + 0.2)
    await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    assert await delivery_worker.deliver_due() == 1
    after = webhook_receiver.requests[-1]
    assert after.headers["Stablegate-Signature"].count("v1=") == 1
    assert verifies(new_secret, after)
    assert not verifies(old_secret, after)


async def test_rolling_with_no_overlap_retires_the_old_secret_at_once(
    api: httpx.AsyncClient,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    delivery_worker: WebhookDeliveryWorker,
) -> None:
    endpoint = await new_endpoint(api, merchant, webhook_receiver.url)
    path = f"/v1/webhook_endpoints/{endpoint['id']}/roll_secret"
    # The body is optional; the default overlap is a day.
    default = (await api.post(path, headers=merchant.headers)).json()
    assert default["previous_secret_expires_at"] is not None
    now = (await api.post(path, json={"expires_in": 0}, headers=merchant.headers)).json()
    assert now["previous_secret_expires_at"] is None

    await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    assert await delivery_worker.deliver_due() == 1
    [request] = webhook_receiver.requests
    assert verifies(now["secret"], request)
    assert not verifies(default["secret"], request)
    assert not verifies(endpoint["secret"], request)


@pytest.mark.parametrize("body", [{"expires_in": -1}, {"expires_in": 8 * 86_400}, {"x": 1}])
async def test_a_bad_roll_changes_nothing(
    api: httpx.AsyncClient, merchant: ApiMerchant, body: dict[str, Any]
) -> None:
    endpoint = await new_endpoint(api, merchant, "http://127.0.0.1:9/hooks")
    path = f"/v1/webhook_endpoints/{endpoint['id']}/roll_secret"
    refused = await api.post(path, json=body, headers=merchant.headers)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] in {"expires_in", "x"}
    # The secret is unchanged: rolling now still reports the creation's secret as previous.
    again = await api.post(path, json={"expires_in": 60}, headers=merchant.headers)
    assert again.status_code == 200


async def test_the_test_event_reaches_the_endpoint_and_shows_in_the_log(
    api: httpx.AsyncClient,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    running_delivery_worker: WebhookDeliveryWorker,
) -> None:
    # Subscribed to nothing but paid intents: the test event comes all the same.
    endpoint = await new_endpoint(
        api, merchant, webhook_receiver.url, enabled_events=["payment_intent.paid"]
    )
    path = f"/v1/webhook_endpoints/{endpoint['id']}"
    sent = await api.post(f"{path}/test", headers=merchant.headers)
    assert sent.status_code == 200, sent.text
    delivery = sent.json()
    assert (delivery["object"], delivery["status"], delivery["attempts"]) == (
        "webhook_delivery",
        "pending",
        0,
    )
    assert delivery["event_type"] == "webhook_endpoint.test"

    await eventually(lambda: len(webhook_receiver.requests) == 1, timeout=10)
    [request] = webhook_receiver.requests
    assert verifies(endpoint["secret"], request)
    event = json.loads(request.body)
    assert (event["id"], event["type"], event["sequence"]) == (
        delivery["event"],
        "webhook_endpoint.test",
        1,
    )
    assert event["data"]["object"]["id"] == endpoint["id"]
    assert "secret" not in event["data"]["object"]

    async def logged() -> dict[str, Any]:
        listed = await api.get(f"{path}/deliveries", headers=merchant.headers)
        assert listed.status_code == 200, listed.text
        return dict(listed.json()["data"][0])

    await eventually(lambda: _succeeded(logged), timeout=10)
    entry = await logged()
    assert entry["id"] == delivery["id"]
    assert (entry["attempts"], entry["response_status_code"], entry["next_attempt_at"]) == (
        1,
        200,
        None,
    )
    assert entry["duration_ms"] is not None
    assert entry["last_attempt_at"] is not None
    assert entry["delivered_at"] is not None
    # A second test event is the endpoint's next sequence.
    await api.post(f"{path}/test", headers=merchant.headers)
    await eventually(lambda: len(webhook_receiver.requests) == 2, timeout=10)
    assert json.loads(webhook_receiver.requests[1].body)["sequence"] == 2


async def _succeeded(logged: Any) -> bool:
    return (await logged())["status"] == "succeeded"


async def test_the_delivery_log_pages_and_filters(
    api: httpx.AsyncClient, merchant: ApiMerchant, delivery_worker: WebhookDeliveryWorker
) -> None:
    endpoint = await new_endpoint(api, merchant, "http://127.0.0.1:9/refused")
    for _ in range(3):
        await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    await delivery_worker.deliver_due()  # every attempt fails: connection refused
    path = f"/v1/webhook_endpoints/{endpoint['id']}/deliveries"

    first = (await api.get(f"{path}?limit=2", headers=merchant.headers)).json()
    assert (first["object"], first["has_more"], first["url"]) == ("list", True, path)
    rest = (
        await api.get(f"{path}?starting_after={first['data'][-1]['id']}", headers=merchant.headers)
    ).json()
    ids = [d["id"] for d in first["data"] + rest["data"]]
    assert len(ids) == len(set(ids)) == 3
    assert ids == sorted(ids, reverse=True)
    for entry in first["data"]:
        assert (entry["status"], entry["attempts"], entry["response_status_code"]) == (
            "pending",
            1,
            None,
        )
        assert entry["last_error"]
        assert entry["next_attempt_at"] is not None
        assert entry["event_type"] == "payment_intent.created"

    event = first["data"][0]["event"]
    by_event = (await api.get(f"{path}?event={event}", headers=merchant.headers)).json()["data"]
    assert [d["event"] for d in by_event] == [event]
    assert (await api.get(f"{path}?status=succeeded", headers=merchant.headers)).json()[
        "data"
    ] == []
    bad = await api.get(f"{path}?status=lost", headers=merchant.headers)
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "status")


async def test_redelivery_sends_the_same_event_again_as_a_new_delivery(
    api: httpx.AsyncClient,
    merchant: ApiMerchant,
    merchant_factory: MerchantFactory,
    webhook_receiver: Receiver,
    delivery_worker: WebhookDeliveryWorker,
) -> None:
    endpoint = await new_endpoint(api, merchant, webhook_receiver.url)
    await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    assert await delivery_worker.deliver_due() == 1
    log = f"/v1/webhook_endpoints/{endpoint['id']}/deliveries"
    [original] = (await api.get(log, headers=merchant.headers)).json()["data"]
    assert original["status"] == "succeeded"

    other = await merchant_factory("Other Shop")
    foreign = await api.post(
        f"/v1/webhook_deliveries/{original['id']}/redeliver", headers=other.headers
    )
    assert foreign.status_code == 404

    again = await api.post(
        f"/v1/webhook_deliveries/{original['id']}/redeliver", headers=merchant.headers
    )
    assert again.status_code == 200, again.text
    copy = again.json()
    assert copy["id"] != original["id"]
    assert (copy["redelivery_of"], copy["event"], copy["status"]) == (
        original["id"],
        original["event"],
        "pending",
    )
    assert await delivery_worker.deliver_due() == 1
    first, second = webhook_receiver.requests
    assert first.body == second.body  # the same event, byte for byte
    assert verifies(endpoint["secret"], second)
    assert second.headers["Stablegate-Delivery-Id"] == copy["id"]


async def test_a_disabled_endpoint_gets_nothing_until_enabled_again(
    api: httpx.AsyncClient,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    delivery_worker: WebhookDeliveryWorker,
) -> None:
    endpoint = await new_endpoint(api, merchant, webhook_receiver.url)
    path = f"/v1/webhook_endpoints/{endpoint['id']}"
    disabled = await api.post(path, json={"disabled": True}, headers=merchant.headers)
    assert disabled.status_code == 200, disabled.text
    assert (disabled.json()["status"], disabled.json()["disabled_reason"]) == ("disabled", None)

    await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    assert await delivery_worker.deliver_due() == 0
    refused = await api.post(f"{path}/test", headers=merchant.headers)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "endpoint_disabled"
    listed = await api.get("/v1/webhook_endpoints?status=disabled", headers=merchant.headers)
    assert [e["id"] for e in listed.json()["data"]] == [endpoint["id"]]

    enabled = await api.post(
        path,
        json={"disabled": False, "enabled_events": ["payment_intent.created"]},
        headers=merchant.headers,
    )
    assert enabled.json()["status"] == "enabled"
    assert enabled.json()["enabled_events"] == ["payment_intent.created"]
    await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    assert await delivery_worker.deliver_due() == 1
    assert len(webhook_receiver.requests) == 1
