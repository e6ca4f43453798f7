"""`GET /v1/events`: the merchant's event stream, the same objects webhooks carry."""

from __future__ import annotations

import httpx

from tests.fixtures.gateway import ApiMerchant, MerchantFactory, intent_body


async def test_events_list_what_happened_to_the_merchants_objects(
    api: httpx.AsyncClient, merchant: ApiMerchant, merchant_factory: MerchantFactory
) -> None:
    other = await merchant_factory(name="Other Shop")
    first = (
        await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    ).json()
    second = (
        await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    ).json()
    canceled = await api.post(f"/v1/payment_intents/{first['id']}/cancel", headers=merchant.headers)

    listed = await api.get("/v1/events", headers=merchant.headers)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert (body["object"], body["url"], body["has_more"]) == ("list", "/v1/events", False)
    assert [(e["type"], e["data"]["object"]["id"]) for e in body["data"]] == [
        ("payment_intent.canceled", first["id"]),
        ("payment_intent.created", second["id"]),
        ("payment_intent.created", first["id"]),
    ]
    newest = body["data"][0]
    assert newest["object"] == "event"
    assert newest["id"].startswith("evt_")
    assert newest["data"]["object"] == canceled.json()
    assert newest["sequence"] == 2

    async def types(query: str) -> list[str]:
        response = await api.get(f"/v1/events?{query}", headers=merchant.headers)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["data"]]

    ids = [e["id"] for e in body["data"]]
    assert await types("type=payment_intent.created") == ids[1:]
    assert await types(f"object_id={first['id']}") == [ids[0], ids[2]]
    assert await types(f"limit=1&starting_after={ids[0]}") == [ids[1]]
    assert (await api.get("/v1/events", headers=other.headers)).json()["data"] == []

    one = await api.get(f"/v1/events/{ids[0]}", headers=merchant.headers)
    assert one.status_code == 200
    assert one.json() == newest
    hidden = await api.get(f"/v1/events/{ids[0]}", headers=other.headers)
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "resource_missing"
    bad = await api.get("/v1/events?type=payment_intent.done", headers=merchant.headers)
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "type")
