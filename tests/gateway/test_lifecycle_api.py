"""The lifecycle through the API: `POST /v1/payment_intents/{id}/resolve` (who and why
recorded, 409 outside `requires_action`), the `underpayment_tolerance` request field and
its validation, the configured confirmation depth from the environment, and what the
OpenAPI document says about statuses and exceptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from stablegate_common.config import load_settings
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.intents.jobs import expire_due_intents
from stablegate_gateway.intents.models import IntentResolution, PaymentIntent
from stablegate_gateway.intents.schemas import PaymentIntentOut
from stablegate_gateway.settings import GatewaySettings
from tests.fixtures.gateway import ApiMerchant, MerchantFactory, intent_body
from tests.fixtures.payments import ChainTx, load_intent, merchant_events, rows

USDT = 1_000_000
Feed = Any


async def create(api: httpx.AsyncClient, merchant: ApiMerchant, **body: Any) -> httpx.Response:
    return await api.post("/v1/payment_intents", json=intent_body(**body), headers=merchant.headers)


async def underpaid_intent(
    api: httpx.AsyncClient, ctx: GatewayContext, merchant: ApiMerchant, feed: Feed
) -> dict[str, Any]:
    """An intent that expired holding 10 of 25 USDT: `requires_action/underpaid`."""
    intent: dict[str, Any] = (await create(api, merchant, expires_in=60)).json()
    await feed(ChainTx(intent["deposit_address"].lower(), 10 * USDT).event("confirmed", 1))
    await expire_due_intents(ctx, now=datetime.now(UTC) + timedelta(minutes=5))
    stored = await load_intent(ctx, intent["id"])
    assert (stored.status, stored.exception) == ("requires_action", "underpaid")
    return intent


async def resolve(
    api: httpx.AsyncClient, intent_id: str, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await api.post(f"/v1/payment_intents/{intent_id}/resolve", json=body, headers=headers)


def error(response: httpx.Response) -> tuple[int, str, str | None]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["param"]


async def test_mark_paid_makes_it_paid_keeps_the_exception_and_records_who_and_why(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await underpaid_intent(api, gateway_ctx, merchant, transfer_feed)

    response = await resolve(
        api, intent["id"], merchant.headers, action="mark_paid", reason="  fee kept by exchange "
    )

    assert response.status_code == 200, response.text
    body = response.json()
    PaymentIntentOut.model_validate(body)
    assert (body["status"], body["exception"]) == ("paid", "underpaid")
    assert body["resolution"]["action"] == "mark_paid"
    [record] = await rows(gateway_ctx, IntentResolution, IntentResolution.intent_id == intent["id"])
    assert (record.action, record.reason, record.exception) == (
        "mark_paid",
        "fee kept by exchange",
        "underpaid",
    )
    assert (record.actor_type, record.api_key_id, record.token_subject) == (
        "api_key",
        merchant.api_key_id,
        None,
    )
    last = (await merchant_events(gateway_ctx, intent["id"]))[-1]
    assert (last.type, last.data["object"]["resolution"]["action"]) == (
        "payment_intent.paid",
        "mark_paid",
    )


async def test_void_with_a_token_cancels_and_records_the_tokens_key_and_subject(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await underpaid_intent(api, gateway_ctx, merchant, transfer_feed)
    token = (await api.post("/v1/auth/token", headers=merchant.headers)).json()["access_token"]

    response = await resolve(
        api,
        intent["id"],
        {"Authorization": f"Bearer {token}"},
        action="void",
        reason="refunded by hand",
    )

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["exception"]) == ("canceled", "underpaid")
    [record] = await rows(gateway_ctx, IntentResolution, IntentResolution.intent_id == intent["id"])
    assert (record.actor_type, record.api_key_id, record.token_subject) == (
        "token",
        merchant.api_key_id,
        merchant.id,
    )
    stored = await load_intent(gateway_ctx, intent["id"])
    assert stored.canceled_at is None  # not canceled before funds: voided after
    # The decision is final: more money later changes the amounts only.
    await transfer_feed(ChainTx(intent["deposit_address"].lower(), 15 * USDT).event("confirmed", 1))
    later = await load_intent(gateway_ctx, intent["id"])
    assert (later.status, later.exception, later.amount_confirmed_base_units) == (
        "canceled",
        "underpaid",
        25 * USDT,
    )


async def test_resolve_is_refused_outside_requires_action_and_twice(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    fresh = (await create(api, merchant)).json()
    refused = await resolve(api, fresh["id"], merchant.headers, action="mark_paid", reason="x")
    assert error(refused) == (409, "intent_not_resolvable", None)

    intent = await underpaid_intent(api, gateway_ctx, merchant, transfer_feed)
    ok = await resolve(api, intent["id"], merchant.headers, action="void", reason="first")
    assert ok.status_code == 200
    again = await resolve(api, intent["id"], merchant.headers, action="mark_paid", reason="no")
    assert error(again) == (409, "intent_not_resolvable", None)
    records = await rows(gateway_ctx, IntentResolution, IntentResolution.intent_id == intent["id"])
    assert [r.reason for r in records] == ["first"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"action": "mark_paid"}, (400, "parameter_missing", "reason")),
        ({"action": "refund", "reason": "x"}, (400, "parameter_invalid", "action")),
        ({"action": "void", "reason": "   "}, (400, "parameter_invalid", "reason")),
        ({"action": "void", "reason": "x" * 1001}, (400, "parameter_invalid", "reason")),
        ({"action": "void", "reason": "x", "force": True}, (400, "parameter_unknown", "force")),
    ],
)
async def test_resolve_validates_its_body_before_anything(
    api: httpx.AsyncClient,
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    transfer_feed: Feed,
    body: dict[str, Any],
    expected: tuple[int, str, str],
) -> None:
    intent = await underpaid_intent(api, gateway_ctx, merchant, transfer_feed)
    assert error(await resolve(api, intent["id"], merchant.headers, **body)) == expected
    assert (await load_intent(gateway_ctx, intent["id"])).status == "requires_action"


async def test_resolve_finds_only_the_merchants_own_intents(
    api: httpx.AsyncClient,
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    merchant_factory: MerchantFactory,
    transfer_feed: Feed,
) -> None:
    intent = await underpaid_intent(api, gateway_ctx, merchant, transfer_feed)
    other = await merchant_factory("Other")
    theirs = await resolve(api, intent["id"], other.headers, action="void", reason="x")
    assert error(theirs) == (404, "resource_missing", "id")
    missing = await resolve(api, "pi_nope", merchant.headers, action="void", reason="x")
    assert error(missing)[:2] == (404, "resource_missing")


# -- underpayment tolerance on create ---------------------------------------------------------


async def test_create_takes_a_tolerance_and_shows_it(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    response = await create(
        api, merchant, underpayment_tolerance={"percent": "0.5000", "amount": "0.1"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["underpayment_tolerance"] == {"percent": "0.5", "amount": "0.10"}
    assert body["resolution"] is None
    stored = await load_intent(gateway_ctx, body["id"])
    assert stored.underpayment_tolerance_base_units == 100_000
    default = (await create(api, merchant)).json()
    assert default["underpayment_tolerance"] == {"percent": "0", "amount": "0.00"}


@pytest.mark.parametrize(
    ("tolerance", "param"),
    [
        ({"percent": "100"}, "underpayment_tolerance[percent]"),
        ({"percent": "-1"}, "underpayment_tolerance[percent]"),
        ({"percent": "0.00001"}, "underpayment_tolerance[percent]"),
        ({"percent": 0.5}, "underpayment_tolerance[percent]"),  # a JSON number: never
        ({"amount": "0.0000001"}, "underpayment_tolerance[amount]"),  # 7 places, USDT has 6
        ({"amount": "1e3"}, "underpayment_tolerance[amount]"),
        ({"amount": "1", "unknown": "1"}, "underpayment_tolerance[unknown]"),
    ],
)
async def test_a_bad_tolerance_is_refused_naming_the_field(
    api: httpx.AsyncClient,
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    tolerance: dict[str, Any],
    param: str,
) -> None:
    response = await create(api, merchant, underpayment_tolerance=tolerance)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert await rows(gateway_ctx, PaymentIntent) == []


# -- configuration and documentation ----------------------------------------------------------


def test_the_confirmation_depth_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, gateway_ctx: GatewayContext
) -> None:
    monkeypatch.setenv("GATEWAY_CONFIRMATIONS", '{"ethereum": 5, "bsc": 20}')
    settings = load_settings(GatewaySettings, "gateway")
    ctx = GatewayContext(settings, settings.asset_registry(), gateway_ctx.db)
    assert (ctx.confirmations_for("ethereum"), ctx.confirmations_for("bsc")) == (5, 20)
    assert ctx.confirmations_for("tron") == 19  # the registry's, where nothing overrides it


@pytest.mark.parametrize("gateway_settings", [{"confirmations": {"ethereum": 5}}], indirect=True)
async def test_every_intent_shows_the_configured_depth(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    assert (await create(api, merchant)).json()["confirmations_required"] == 5
    listed = (await api.get("/v1/payment_intents", headers=merchant.headers)).json()["data"]
    assert [i["confirmations_required"] for i in listed] == [5]


async def test_the_openapi_document_explains_statuses_exceptions_and_resolve(
    api: httpx.AsyncClient,
) -> None:
    spec = (await api.get("/openapi.json")).json()
    resolve_op = spec["paths"]["/v1/payment_intents/{intent_id}/resolve"]["post"]
    assert set(resolve_op["responses"]) >= {"200", "404", "409"}
    body = resolve_op["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["action"]["enum"] == ["mark_paid", "void"]
    intent = spec["components"]["schemas"]["PaymentIntentOut"]["properties"]
    exceptions = {v.get("const") for v in intent["exception"]["anyOf"]} | {
        e for v in intent["exception"]["anyOf"] for e in v.get("enum", [])
    }
    assert exceptions >= {"overpaid", "underpaid", "paid_late", "wrong_asset", "wrong_network"}
    for word in ("paid_late", "wrong_network", "resolve"):
        assert word in intent["exception"]["description"]
    assert "tolerance" in intent["status"]["description"]
