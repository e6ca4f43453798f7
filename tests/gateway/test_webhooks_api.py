"""`/v1/webhook_endpoints` over the in-process app on a migrated schema: the secret shown
once, listing and paging, deletion, and the URL policy."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from stablegate_gateway.app import create_app
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.settings import GatewaySettings
from stablegate_gateway.webhooks.urls import UrlRefused, check_webhook_url
from tests.fixtures.gateway import ApiMerchant, MerchantFactory, SettingsFactory
from tests.fixtures.payments import (
    fast_webhook_settings,
)


@pytest.fixture
def gateway_settings(gateway_settings_factory: SettingsFactory) -> GatewaySettings:
    return fast_webhook_settings(gateway_settings_factory)


URL = "http://127.0.0.1:8080/hooks"


async def test_the_secret_is_shown_once(api: httpx.AsyncClient, merchant: ApiMerchant) -> None:
    created = await api.post(
        "/v1/webhook_endpoints",
        json={"url": URL, "description": "orders"},
        headers=merchant.headers,
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["id"].startswith("we_")
    assert (body["object"], body["url"], body["enabled_events"], body["status"]) == (
        "webhook_endpoint",
        URL,
        ["*"],
        "enabled",
    )
    assert body["description"] == "orders"

    one = await api.get(f"/v1/webhook_endpoints/{body['id']}", headers=merchant.headers)
    listed = await api.get("/v1/webhook_endpoints", headers=merchant.headers)
    assert one.status_code == listed.status_code == 200
    assert "secret" not in one.json()
    assert body["secret"] not in one.text
    assert body["secret"] not in listed.text
    assert {k: v for k, v in body.items() if k != "secret"} == one.json()


async def test_list_pages_newest_first_and_shows_only_the_merchants_own(
    api: httpx.AsyncClient, merchant: ApiMerchant, merchant_factory: MerchantFactory
) -> None:
    other = await merchant_factory("Other Shop")
    ids = []
    for n in range(3):
        response = await api.post(
            "/v1/webhook_endpoints", json={"url": f"{URL}/{n}"}, headers=merchant.headers
        )
        ids.append(response.json()["id"])
    await api.post("/v1/webhook_endpoints", json={"url": URL}, headers=other.headers)

    first = (await api.get("/v1/webhook_endpoints?limit=2", headers=merchant.headers)).json()
    assert [e["id"] for e in first["data"]] == [ids[2], ids[1]]
    assert (first["object"], first["has_more"], first["url"]) == (
        "list",
        True,
        "/v1/webhook_endpoints",
    )
    second = (
        await api.get(
            f"/v1/webhook_endpoints?limit=2&starting_after={ids[1]}", headers=merchant.headers
        )
    ).json()
    assert [e["id"] for e in second["data"]] == [ids[0]]
    assert second["has_more"] is False

    foreign = await api.get(f"/v1/webhook_endpoints/{ids[0]}", headers=other.headers)
    assert foreign.status_code == 404


async def test_delete_answers_deleted_and_the_endpoint_is_gone(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    endpoint_id = (
        await api.post("/v1/webhook_endpoints", json={"url": URL}, headers=merchant.headers)
    ).json()["id"]

    deleted = await api.delete(f"/v1/webhook_endpoints/{endpoint_id}", headers=merchant.headers)
    assert deleted.status_code == 200
    assert deleted.json() == {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}
    again = await api.delete(f"/v1/webhook_endpoints/{endpoint_id}", headers=merchant.headers)
    assert again.status_code == 404
    assert (
        await api.get(f"/v1/webhook_endpoints/{endpoint_id}", headers=merchant.headers)
    ).status_code == 404
    listed = (await api.get("/v1/webhook_endpoints", headers=merchant.headers)).json()
    assert listed["data"] == []


async def test_authentication_is_required(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/webhook_endpoints")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "url"),
        ({"url": "ftp://example.com/hooks"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https:///no-host"}, "url"),
        ({"url": "https://example.com:99999/"}, "url"),
        ({"url": URL, "enabled_events": []}, "enabled_events"),
        ({"url": URL, "enabled_events": ["payment_intent.teleported"]}, "enabled_events"),
        ({"url": URL, "colour": "blue"}, "colour"),
    ],
)
async def test_bad_bodies_are_refused_naming_the_parameter(
    api: httpx.AsyncClient, merchant: ApiMerchant, body: dict[str, object], param: str
) -> None:
    response = await api.post("/v1/webhook_endpoints", json=body, headers=merchant.headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_enabled_events_are_kept_without_duplicates(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    events = ["payment_intent.paid", "payment_intent.requires_action", "payment_intent.paid"]
    response = await api.post(
        "/v1/webhook_endpoints",
        json={"url": URL, "enabled_events": events},
        headers=merchant.headers,
    )
    assert response.json()["enabled_events"] == events[:2]


# -- the URL policy ---------------------------------------------------------------------------

PRIVATE_URLS = [
    "http://127.0.0.1:8080/hooks",
    "http://localhost/hooks",
    "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.5/hooks",
    "https://192.168.1.10/hooks",
    "http://172.16.0.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://[::1]/hooks",
    "http://[fe80::1]/hooks",
    "http://[::ffff:127.0.0.1]/hooks",
    "http://[fd00::1]/hooks",
]


@pytest.fixture
async def strict_api(gateway_ctx: GatewayContext) -> AsyncIterator[httpx.AsyncClient]:
    """The app with private webhook URLs refused, as in production."""
    config = gateway_ctx.settings.gateway.model_copy(update={"webhook_allow_private_urls": False})
    settings = gateway_ctx.settings.model_copy(update={"gateway": config})
    strict = GatewayContext(settings, gateway_ctx.registry, gateway_ctx.db)
    transport = httpx.ASGITransport(app=create_app(strict))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        yield client


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_private_urls_are_refused_unless_allowed(
    strict_api: httpx.AsyncClient, api: httpx.AsyncClient, merchant: ApiMerchant, url: str
) -> None:
    refused = await strict_api.post(
        "/v1/webhook_endpoints", json={"url": url}, headers=merchant.headers
    )
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert (error["param"], error["code"]) == ("url", "url_invalid")

    allowed = await api.post("/v1/webhook_endpoints", json={"url": url}, headers=merchant.headers)
    assert allowed.status_code == 200, allowed.text


async def test_public_addresses_are_accepted(
    strict_api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    # IP literals: no DNS needed on a machine without internet.
    for url in ("https://93.184.216.34/hooks", "http://[2606:2800:220:1::1]:8443/h"):
        response = await strict_api.post(
            "/v1/webhook_endpoints", json={"url": url}, headers=merchant.headers
        )
        assert response.status_code == 200, response.text


async def test_a_host_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(UrlRefused, match="does not resolve"):
        await check_webhook_url("https://no-such-host.invalid/hooks", allow_private=False)
