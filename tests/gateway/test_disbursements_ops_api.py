"""`/ops/v1/disbursements` over the in-process app: the list across merchants, the
four-eyes approval (two different admins, named in `Ops-Actor`), and plan-now."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from stablegate_gateway.context import GatewayContext
from stablegate_gateway.merchants.models import Merchant
from tests.fixtures.gateway import ApiMerchant
from tests.fixtures.payments import ChainTx, create_intent

TOKEN = "ops-token-0123456789abcdef0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CUSTOMER = "0x52908400098527886E0F7030069857D2E4169EE7"
USDT = 1_000_000
Feed = Any


@pytest.fixture
def gateway_settings(gateway_settings_factory: Any) -> Any:
    settings = gateway_settings_factory()
    settings.outgoing = type(settings.outgoing)(ops_token=TOKEN)
    return settings


async def refund(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, feed: Feed
) -> dict[str, Any]:
    async with gateway_ctx.db.transaction() as session:
        row = await session.get(Merchant, merchant.id)
        assert row is not None
        row.disbursement_approval_limit = Decimal(5)
    intent = await create_intent(gateway_ctx, merchant.id)
    await feed(ChainTx(intent.deposit_address, 25 * USDT).event("confirmed", 1))
    made = await api.post(
        "/v1/refunds",
        json={"payment_intent": intent.id, "destination_address": CUSTOMER, "amount": "10"},
        headers=merchant.headers,
    )
    assert made.status_code == 200, made.text
    body: dict[str, Any] = made.json()
    return body


async def approve(api: httpx.AsyncClient, refund_id: str, actor: str | None) -> httpx.Response:
    headers = {**AUTH, **({"Ops-Actor": actor} if actor is not None else {})}
    return await api.post(f"/ops/v1/disbursements/{refund_id}/approve", headers=headers)


async def test_two_different_admins_approve_a_refund_over_the_limit(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    made = await refund(api, gateway_ctx, merchant, transfer_feed)
    assert made["requires_approval"] is True

    nobody = await approve(api, made["id"], None)
    first = await approve(api, made["id"], "usr_alice")
    again = await approve(api, made["id"], "usr_alice")
    second = await approve(api, made["id"], "usr_bob")

    assert (nobody.status_code, nobody.json()["error"]["param"]) == (400, "Ops-Actor")
    assert (first.status_code, first.json()["approved"]) == (200, False)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_approved")
    assert (second.status_code, second.json()["approved"]) == (200, True)
    assert [a["by"] for a in second.json()["approvals"]] == ["usr_alice", "usr_bob"]
    listed = (await api.get("/ops/v1/disbursements?status=pending", headers=AUTH)).json()
    [shown] = listed["data"]
    assert (shown["id"], shown["merchant"], shown["batch_id"]) == (made["id"], merchant.id, None)
    merchant_view = (await api.get(f"/v1/refunds/{made['id']}", headers=merchant.headers)).json()
    assert merchant_view["approvals"] == 2


async def test_one_within_the_limit_needs_no_approval_and_plan_now_needs_a_network_setup(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent = await create_intent(gateway_ctx, merchant.id)
    await transfer_feed(ChainTx(intent.deposit_address, 25 * USDT).event("confirmed", 1))
    made = (
        await api.post(
            "/v1/refunds",
            json={"payment_intent": intent.id, "destination_address": CUSTOMER, "amount": "1"},
            headers=merchant.headers,
        )
    ).json()

    response = await approve(api, made["id"], "usr_alice")
    everywhere = await api.post("/ops/v1/disbursements/plan", json={}, headers=AUTH)
    ethereum = await api.post(
        "/ops/v1/disbursements/plan", json={"network": "ethereum"}, headers=AUTH
    )

    assert (response.status_code, response.json()["error"]["code"]) == (
        409,
        "approval_not_required",
    )
    # No fee wallet or node configured: the schedule's view passes over every network, a
    # network named is an error naming it.
    assert everywhere.json()["data"] == []
    assert ethereum.status_code == 400
    assert ethereum.json()["error"]["code"] == "disbursements_not_configured"
    unauthorized = await api.get("/ops/v1/disbursements", headers={"Authorization": "Bearer x"})
    assert unauthorized.status_code == 401
