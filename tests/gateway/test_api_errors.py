"""Bad requests to the API: each gets the error envelope naming the problem, and nothing
is written (no intent, no address taken or derived, no outbox row, no merchant event)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from stablegate_common.db import Database
from stablegate_gateway.app import create_app
from stablegate_gateway.context import GatewayContext
from tests.fixtures.gateway import ApiMerchant, MerchantFactory, intent_body, written

REQUEST_ID = r"^req_[0-9A-Z]{26}$"


def assert_error(
    response: httpx.Response, status: int, error_type: str, code: str | None, param: str | None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "param", "request_id"}
    assert (error["type"], error["code"], error["param"]) == (error_type, code, param)
    assert error["message"]
    assert error["request_id"] == response.headers["Request-Id"]
    return dict(error)


BAD_BODIES: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("zero", intent_body(amount="0"), "invalid_amount", "amount"),
    ("zero with decimals", intent_body(amount="0.000000"), "invalid_amount", "amount"),
    ("negative", intent_body(amount="-5.00"), "invalid_amount", "amount"),
    ("over-precise", intent_body(amount="1.0000001"), "invalid_amount", "amount"),
    ("exponent", intent_body(amount="1e3"), "invalid_amount", "amount"),
    ("empty amount", intent_body(amount=""), "invalid_amount", "amount"),
    ("garbage amount", intent_body(amount="ten"), "invalid_amount", "amount"),
    ("thousands separator", intent_body(amount="1,000.00"), "invalid_amount", "amount"),
    ("integer number", intent_body(amount=25), "invalid_amount", "amount"),
    ("null amount", {**intent_body(), "amount": None}, "invalid_amount", "amount"),
    ("unknown network", intent_body(network="solana"), "unknown_network", "network"),
    ("unknown asset", intent_body(asset="DAI"), "unknown_asset", "asset"),
    ("unknown currency", intent_body(currency="DAI"), "unknown_asset", "currency"),
    ("asset differs from currency", intent_body(asset="USDC"), "parameter_invalid", "asset"),
    ("missing amount", intent_body(amount=None), "parameter_missing", "amount"),
    ("missing network", intent_body(network=None), "parameter_missing", "network"),
    ("missing currency", intent_body(currency=None), "parameter_missing", "currency"),
    ("unknown parameter", intent_body(colour="blue"), "parameter_unknown", "colour"),
    ("expires_in too short", intent_body(expires_in=5), "parameter_invalid", "expires_in"),
    ("expires_in too long", intent_body(expires_in=10**9), "parameter_invalid", "expires_in"),
    ("expires_in fraction", intent_body(expires_in=60.5), "parameter_invalid", "expires_in"),
    ("reference too long", intent_body(reference="r" * 201), "parameter_invalid", "reference"),
    (
        "description too long",
        intent_body(description="d" * 1001),
        "parameter_invalid",
        "description",
    ),
    (
        "too many metadata keys",
        intent_body(metadata={f"k{i}": "v" for i in range(51)}),
        "parameter_invalid",
        "metadata",
    ),
    (
        "metadata value not a string",
        intent_body(metadata={"order": 42}),
        "parameter_invalid",
        "metadata[order]",
    ),
    (
        "metadata value too long",
        intent_body(metadata={"order": "x" * 501}),
        "parameter_invalid",
        "metadata[order]",
    ),
    ("metadata not an object", intent_body(metadata=["a"]), "parameter_invalid", "metadata"),
    ("network not a string", intent_body(network=1), "parameter_invalid", "network"),
]


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
async def test_bad_create_is_refused_naming_the_field_and_writes_nothing(
    api: httpx.AsyncClient,
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    body: dict[str, Any],
    code: str,
    param: str,
) -> None:
    before = await written(gateway_ctx)
    response = await api.post("/v1/payment_intents", json=body, headers=merchant.headers)
    assert_error(response, 400, "invalid_request_error", code, param)
    assert await written(gateway_ctx) == before


@pytest.mark.parametrize(
    "raw",
    [b'{"amount": 25.5, "currency": "USDT", "network": "ethereum"}', b'{"amount": 2.5e1}'],
    ids=["float", "float with exponent"],
)
async def test_json_number_amounts_are_refused(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, raw: bytes
) -> None:
    before = await written(gateway_ctx)
    headers = {**merchant.headers, "Content-Type": "application/json"}
    response = await api.post("/v1/payment_intents", content=raw, headers=headers)
    error = assert_error(response, 400, "invalid_request_error", "invalid_amount", "amount")
    assert "string" in error["message"]
    assert await written(gateway_ctx) == before


@pytest.mark.parametrize(
    "raw",
    [b'{"amount": "25.00",', b"amount=25", b"[1, 2]", b'"text"', b'{"amount": NaN}', b"\xff\xfe"],
    ids=["truncated", "form", "array", "string", "NaN", "not utf-8"],
)
async def test_malformed_json_is_invalid_json(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, raw: bytes
) -> None:
    before = await written(gateway_ctx)
    headers = {**merchant.headers, "Content-Type": "application/json"}
    response = await api.post("/v1/payment_intents", content=raw, headers=headers)
    assert_error(response, 400, "invalid_request_error", "invalid_json", None)
    assert await written(gateway_ctx) == before


async def test_an_empty_body_names_the_first_missing_parameter(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    response = await api.post("/v1/payment_intents", headers=merchant.headers)
    assert_error(response, 400, "invalid_request_error", "parameter_missing", "amount")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": ""}, "missing_api_key"),
        ({"Authorization": "Bearer sk_test_" + "x" * 40}, "invalid_api_key"),
        ({"Authorization": "Bearer sk_test_short"}, "invalid_api_key"),
        ({"Authorization": "Basic c2tfdGVzdF86"}, "invalid_api_key"),
        ({"Authorization": "Bearer"}, "invalid_api_key"),
        ({"Authorization": "Bearer not-a-jwt"}, "invalid_token"),
    ],
    ids=["none", "empty", "unknown key", "malformed key", "basic", "no credential", "garbage"],
)
async def test_missing_or_wrong_credentials_are_401_and_write_nothing(
    api: httpx.AsyncClient,
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    headers: dict[str, str],
    code: str,
) -> None:
    before = await written(gateway_ctx)
    response = await api.post("/v1/payment_intents", json=intent_body(), headers=headers)
    assert_error(response, 401, "authentication_error", code, None)
    assert await written(gateway_ctx) == before
    listing = await api.get("/v1/payment_intents", headers=headers)
    assert_error(listing, 401, "authentication_error", code, None)


async def test_authentication_is_checked_before_the_body(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/payment_intents", json={"amount": 1})
    assert_error(response, 401, "authentication_error", "missing_api_key", None)


async def test_another_merchants_intent_is_not_found(
    api: httpx.AsyncClient, merchant: ApiMerchant, merchant_factory: MerchantFactory
) -> None:
    other = await merchant_factory(name="Other Shop")
    created = await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    intent_id = created.json()["id"]
    for method, path in (("GET", ""), ("POST", "/cancel")):
        response = await api.request(
            method, f"/v1/payment_intents/{intent_id}{path}", headers=other.headers
        )
        error = assert_error(response, 404, "invalid_request_error", "resource_missing", "id")
        assert intent_id in error["message"]
    listing = await api.get("/v1/payment_intents", headers=other.headers)
    assert listing.json()["data"] == []
    mine = await api.get(f"/v1/payment_intents/{intent_id}", headers=merchant.headers)
    assert mine.status_code == 200


async def test_unknown_intent_is_not_found(api: httpx.AsyncClient, merchant: ApiMerchant) -> None:
    response = await api.get(
        "/v1/payment_intents/pi_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4", headers=merchant.headers
    )
    assert_error(response, 404, "invalid_request_error", "resource_missing", "id")


@pytest.mark.parametrize(
    ("query", "code", "param"),
    [
        ("limit=0", "parameter_invalid", "limit"),
        ("limit=101", "parameter_invalid", "limit"),
        ("limit=ten", "parameter_invalid", "limit"),
        ("status=done", "parameter_invalid", "status"),
        ("network=solana", "unknown_network", "network"),
        ("created_gte=yesterday", "parameter_invalid", "created_gte"),
        ("starting_after=nope", "parameter_invalid", "starting_after"),
        (
            "starting_after=pi_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4&ending_before=pi_01JDQ3M4W6Z0E9T0QJX1N2Y3Z4",
            "parameters_exclusive",
            "ending_before",
        ),
    ],
)
async def test_bad_list_parameters_are_400(
    api: httpx.AsyncClient, merchant: ApiMerchant, query: str, code: str, param: str
) -> None:
    response = await api.get(f"/v1/payment_intents?{query}", headers=merchant.headers)
    assert_error(response, 400, "invalid_request_error", code, param)


async def test_request_id_is_on_every_response(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    responses = [
        await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers),
        await api.get("/v1/payment_intents", headers=merchant.headers),
        await api.get("/v1/payment_intents"),
        await api.post(
            "/v1/payment_intents", json=intent_body(amount="0"), headers=merchant.headers
        ),
        await api.get("/v1/no_such_route"),
        await api.delete("/v1/payment_intents"),
        await api.get("/healthz"),
        await api.get("/openapi.json"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 401, 400, 404, 405, 200, 200]
    ids = [r.headers.get("Request-Id", "") for r in responses]
    for request_id in ids:
        assert request_id.startswith("req_")
        assert len(request_id) == 30
    assert len(set(ids)) == len(ids)


async def test_a_client_request_id_is_not_echoed(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz", headers={"Request-Id": "req_mine"})
    assert response.headers["Request-Id"] != "req_mine"


async def test_unknown_route_is_a_404_envelope(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/nothing/here")
    assert_error(response, 404, "invalid_request_error", "resource_missing", None)
    wrong_method = await api.put("/v1/payment_intents")
    assert_error(wrong_method, 405, "invalid_request_error", "method_not_allowed", None)


async def test_an_unexpected_failure_is_a_bare_500_that_leaks_nothing(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    app = api._transport.app  # type: ignore[attr-defined]
    assert isinstance(app, FastAPI)

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    response = await api.get("/v1/boom")
    error = assert_error(response, 500, "api_error", None, None)
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert (
        error["request_id"] in caplog.text
        or any(getattr(r, "request_id", None) == error["request_id"] for r in caplog.records)
        or "unhandled error" in caplog.text
    )


async def test_an_exhausted_connection_pool_is_a_503_with_retry_after_and_nothing_written(
    gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    tiny = Database(
        gateway_ctx.settings.database.model_copy(
            update={"pool_size": 1, "max_overflow": 0, "pool_timeout_seconds": 0.2}
        )
    )
    ctx = gateway_ctx.using(tiny)
    transport = httpx.ASGITransport(app=create_app(ctx))
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as api,
            tiny.engine.connect(),  # the pool's only connection, held by someone else
        ):
            headers = {**merchant.headers, "Idempotency-Key": "overloaded-1"}
            response = await api.post("/v1/payment_intents", json=intent_body(), headers=headers)
        assert_error(response, 503, "api_error", "gateway_overloaded", None)
        assert response.headers["Retry-After"] == "1"
        assert (await written(gateway_ctx)).intents == 0
        # The same key works once there is room: the 503 was not stored.
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as api:
            retried = await api.post("/v1/payment_intents", json=intent_body(), headers=headers)
        assert retried.status_code == 200, retried.text
        assert "Idempotent-Replayed" not in retried.headers
    finally:
        await tiny.dispose()
