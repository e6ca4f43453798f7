"""Authentication: secret API keys, the JWT exchange, and what each refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from pydantic import SecretStr
from sqlalchemy import update

from stablegate_common.auth import JwtSigner
from stablegate_gateway.context import JWT_AUDIENCE, JWT_ISSUER, GatewayContext
from stablegate_gateway.merchants.models import ApiKey
from stablegate_gateway.merchants.schemas import TokenOut
from tests.fixtures.gateway import TEST_JWT_SECRET, ApiMerchant, MerchantFactory, intent_body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_code(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["type"], error["code"]


async def token_for(api: httpx.AsyncClient, merchant: ApiMerchant) -> str:
    response = await api.post("/v1/auth/token", headers=merchant.headers)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def test_a_key_buys_a_token_that_works_in_its_place(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    response = await api.post("/v1/auth/token", headers=merchant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    TokenOut.model_validate(body)
    assert (body["object"], body["token_type"], body["expires_in"]) == ("token", "Bearer", 900)
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert timedelta(seconds=895) < expires_at - datetime.now(UTC) <= timedelta(seconds=900)
    claims = gateway_ctx.jwt.verify(body["access_token"])
    assert (claims["sub"], claims["key"], claims["mode"]) == (
        merchant.id,
        merchant.api_key_id,
        "test",
    )

    token = bearer(body["access_token"])
    created = await api.post("/v1/payment_intents", json=intent_body(), headers=token)
    assert created.status_code == 200
    fetched = await api.get(f"/v1/payment_intents/{created.json()['id']}", headers=token)
    assert fetched.status_code == 200
    assert fetched.json() == created.json()


async def test_a_token_cannot_buy_another_token(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    token = await token_for(api, merchant)
    response = await api.post("/v1/auth/token", headers=bearer(token))
    assert error_code(response) == (401, "authentication_error", "api_key_required")


async def test_token_exchange_needs_a_key(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/auth/token")
    assert error_code(response) == (401, "authentication_error", "missing_api_key")


async def test_expired_tampered_and_foreign_tokens_are_refused(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    claims = {"key": merchant.api_key_id, "mode": "test"}
    past = JwtSigner(
        SecretStr(TEST_JWT_SECRET),
        issuer=JWT_ISSUER,
        audience=JWT_AUDIENCE,
        ttl_seconds=60,
        clock=lambda: datetime.now(UTC) - timedelta(hours=1),
    )
    expired, _ = past.issue(merchant.id, claims)
    foreign = JwtSigner(
        SecretStr("another-secret-0123456789abcdef0123456789"),
        issuer=JWT_ISSUER,
        audience=JWT_AUDIENCE,
    )
    forged, _ = foreign.issue(merchant.id, claims)
    good = await token_for(api, merchant)
    head, payload, signature = good.split(".")
    tampered = f"{head}.{payload[:-2]}AA.{signature}"
    cases = {expired: "token_expired", forged: "invalid_token", tampered: "invalid_token"}
    for token, code in cases.items():
        response = await api.get("/v1/payment_intents", headers=bearer(token))
        assert error_code(response) == (401, "authentication_error", code)


async def test_a_revoked_key_and_its_tokens_stop_working(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    token = await token_for(api, merchant)
    async with gateway_ctx.db.transaction() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == merchant.api_key_id)
            .values(revoked_at=datetime.now(UTC))
        )
    by_key = await api.get("/v1/payment_intents", headers=merchant.headers)
    assert error_code(by_key) == (401, "authentication_error", "invalid_api_key")
    by_token = await api.get("/v1/payment_intents", headers=bearer(token))
    assert error_code(by_token) == (401, "authentication_error", "invalid_token")


async def test_a_token_is_bound_to_its_merchant(
    api: httpx.AsyncClient, merchant: ApiMerchant, merchant_factory: MerchantFactory
) -> None:
    other = await merchant_factory(name="Other Shop", mode="live")
    assert other.secret.startswith("sk_live_")
    mine = await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    token = await token_for(api, other)
    response = await api.get(f"/v1/payment_intents/{mine.json()['id']}", headers=bearer(token))
    assert response.status_code == 404
    # The token names the merchant; pairing another merchant's key id with it fails.
    signer = JwtSigner(SecretStr(TEST_JWT_SECRET), issuer=JWT_ISSUER, audience=JWT_AUDIENCE)
    mixed, _ = signer.issue(other.id, {"key": merchant.api_key_id, "mode": "test"})
    refused = await api.get("/v1/payment_intents", headers=bearer(mixed))
    assert error_code(refused) == (401, "authentication_error", "invalid_token")


async def test_keys_are_stored_only_as_hashes(
    gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    async with gateway_ctx.db.sessions() as session:
        key = await session.get(ApiKey, merchant.api_key_id)
    assert key is not None
    assert merchant.secret not in (key.key_hash, key.prefix, key.last4)
    assert merchant.secret.startswith(key.prefix)
    assert merchant.secret.endswith(key.last4)
    assert len(key.key_hash) == 64
