"""The OpenAPI document describes the whole v1 surface: every operation with a summary,
a description, examples of its request and response, its errors, the `Request-Id` and
rate-limit headers, and on every POST the `Idempotency-Key` convention."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.gateway import ApiMerchant

NEW_OPERATIONS = {
    ("/v1/webhook_endpoints/{endpoint_id}", "post"),
    ("/v1/webhook_endpoints/{endpoint_id}/roll_secret", "post"),
    ("/v1/webhook_endpoints/{endpoint_id}/test", "post"),
    ("/v1/webhook_endpoints/{endpoint_id}/deliveries", "get"),
    ("/v1/webhook_deliveries/{delivery_id}/redeliver", "post"),
    ("/v1/refunds", "post"),
    ("/v1/refunds", "get"),
    ("/v1/refunds/{disbursement_id}", "get"),
    ("/v1/refunds/{disbursement_id}/cancel", "post"),
    ("/v1/payouts", "post"),
    ("/v1/payouts", "get"),
    ("/v1/payouts/{disbursement_id}", "get"),
    ("/v1/payouts/{disbursement_id}/cancel", "post"),
}


@pytest.fixture
async def document(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, methods in document["paths"].items()
        if path.startswith("/v1/")
        for method, op in methods.items()
    ]


def example_of(document: dict[str, Any], content: dict[str, Any]) -> Any:
    if "example" in content or "examples" in content:
        return content.get("example") or content.get("examples")
    schema = content.get("schema", {})
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema.get("example") or schema.get("examples")


async def test_every_operation_has_examples_errors_and_headers(document: dict[str, Any]) -> None:
    found = operations(document)
    assert {(path, method) for path, method, _ in found} >= NEW_OPERATIONS
    for path, method, op in found:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert op.get("description"), where
        assert op.get("tags"), where
        ok = op["responses"]["200"]
        assert example_of(document, ok["content"]["application/json"]), where
        assert {"400", "401", "429"} <= set(op["responses"]), where
        assert "422" not in op["responses"], where
        for status, response in op["responses"].items():
            assert response["headers"]["Request-Id"]["required"] is True, (where, status)
            if status != "200":
                error = response["content"]["application/json"]
                assert example_of(document, error)["error"]["type"], (where, status)
        assert set(op["responses"]["429"]["headers"]) >= {"Retry-After", "RateLimit-Limit"}
        if "requestBody" in op:
            assert example_of(document, op["requestBody"]["content"]["application/json"]), where


async def test_every_post_documents_the_idempotency_key(document: dict[str, Any]) -> None:
    for path, method, op in operations(document):
        if method != "post":
            continue
        [key] = [p for p in op["parameters"] if p["name"] == "Idempotency-Key"]
        assert (key["in"], key["required"], key["schema"]["maxLength"]) == ("header", False, 255)
        assert "409" in op["responses"], path
        assert "Idempotent-Replayed" in op["responses"]["200"]["headers"], path


async def test_the_webhook_signature_and_retry_schedule_are_described(
    document: dict[str, Any],
) -> None:
    create = document["paths"]["/v1/webhook_endpoints"]["post"]["description"]
    assert "Stablegate-Signature" in create
    roll = document["paths"]["/v1/webhook_endpoints/{endpoint_id}/roll_secret"]["post"]
    assert "two `v1=`" in roll["description"]


# -- what schemathesis found ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v1/events?object_id=a%00b", "/v1/payment_intents/pi_%00", "/v1/events?type=%00"]
)
async def test_a_nul_character_in_the_url_is_a_400_not_a_500(
    api: httpx.AsyncClient, merchant: ApiMerchant, path: str
) -> None:
    response = await api.get(path, headers=merchant.headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["request_id"] == response.headers["Request-Id"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"url": "http://127.0.0.1:9/h", "description": "a\x00b"}, "description"),
        ({"url": "http://127.0.0.1:9/h", "enabled_events": ["*", "x\x00"]}, "enabled_events[1]"),
    ],
)
async def test_a_nul_character_in_the_body_is_refused_naming_the_parameter(
    api: httpx.AsyncClient, merchant: ApiMerchant, body: dict[str, Any], param: str
) -> None:
    response = await api.post("/v1/webhook_endpoints", json=body, headers=merchant.headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
