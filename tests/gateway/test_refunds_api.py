"""`/v1/refunds` and `/v1/payouts` against a migrated schema: what is refundable and
payable, every refusal naming its field (and writing nothing), the race of concurrent
refunds, tenant isolation, idempotent replay, cancel, and the events merchants get."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from stablegate_gateway.balances.models import Balance
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.disbursements.models import Disbursement
from stablegate_gateway.events.models import MerchantEvent
from stablegate_gateway.merchants.models import Merchant
from tests.fixtures.gateway import ApiMerchant, MerchantFactory
from tests.fixtures.payments import ChainTx, create_intent, load_intent

USDT = 1_000_000
CUSTOMER = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55 (the EIP's own example)
TRON_CUSTOMER = "TLsV52sRDL79HXGGm9yzwKibb6BeruhUzy"
Feed = Any


async def paid_intent(
    ctx: GatewayContext, merchant: ApiMerchant, feed: Feed, *, due: str = "25.00", sent: int
) -> str:
    intent = await create_intent(ctx, merchant.id, amount=due)
    await feed(ChainTx(intent.deposit_address, sent).event("confirmed", 1))
    return intent.id


async def refund(api: httpx.AsyncClient, merchant: ApiMerchant, **body: Any) -> httpx.Response:
    body.setdefault("destination_address", CUSTOMER)
    return await api.post("/v1/refunds", json=body, headers=merchant.headers)


async def disbursement_count(ctx: GatewayContext) -> int:
    async with ctx.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Disbursement)) or 0)


def error(response: httpx.Response) -> tuple[int, str, str | None]:
    body = response.json()["error"]
    return response.status_code, body["code"], body.get("param")


# --- refunds -----------------------------------------------------------------------------


async def test_a_refund_of_an_overpayment_returns_the_excess(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent_id = await paid_intent(gateway_ctx, merchant, transfer_feed, sent=30 * USDT)

    response = await refund(
        api, merchant, payment_intent=intent_id, amount="5.00", reason="overpaid",
        metadata={"ticket": "T-9"},
    )  # fmt: skip

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"].startswith("re_")
    assert (body["object"], body["status"], body["payment_intent"]) == (
        "refund",
        "pending",
        intent_id,
    )
    assert (body["amount"], body["amount_base_units"], body["asset"], body["network"]) == (
        "5.00", str(5 * USDT), "USDT", "ethereum"
    )  # fmt: skip
    assert body["destination_address"] == CUSTOMER
    assert (body["reason"], body["metadata"], body["tx_hash"]) == (
        "overpaid",
        {"ticket": "T-9"},
        None,
    )
    assert body["network_fee"] == {
        "amount": None, "amount_base_units": None, "asset": "ETH", "paid_by": "merchant"
    }  # fmt: skip
    shown = (await api.get(f"/v1/payment_intents/{intent_id}", headers=merchant.headers)).json()
    assert (shown["amount_refunded"], shown["amount_refundable"]) == ("5.00", "25.00")
    async with gateway_ctx.db.sessions() as session:
        types = list(
            await session.scalars(
                select(MerchantEvent.type).where(MerchantEvent.object_id == body["id"])
            )
        )
    assert types == ["refund.created"]


async def test_two_partial_refunds_then_a_third_over_the_rest_is_refused(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent_id = await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)

    first = await refund(api, merchant, payment_intent=intent_id, amount="10")
    second = await refund(api, merchant, payment_intent=intent_id, amount="10.5")
    third = await refund(api, merchant, payment_intent=intent_id, amount="4.500001")

    assert (first.status_code, second.status_code) == (200, 200)
    assert error(third) == (400, "amount_exceeds_refundable", "amount")
    assert "4.50 USDT" in third.json()["error"]["message"]
    rest = await refund(api, merchant, payment_intent=intent_id)  # default: all that is left
    assert rest.json()["amount"] == "4.50"
    intent = await load_intent(gateway_ctx, intent_id)
    assert intent.amount_refunded_base_units == 25 * USDT
    assert error(await refund(api, merchant, payment_intent=intent_id)) == (
        400, "amount_exceeds_refundable", "amount"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("destination", "why"),
    [
        ("0x52908400098527886E0F7030069857D2E4169Ee7", "checksum"),  # one letter's case flipped
        ("0x5290840009852788", "0x + 40 hex"),
        ("0x0000000000000000000000000000000000000000", "zero address"),
        (TRON_CUSTOMER, "0x + 40 hex"),  # a Tron address for an Ethereum intent
        ("not an address", "0x + 40 hex"),
        ("0xdAC17F958D2ee523a2206206994597C13D831ec7", "token contract"),  # USDT itself
    ],
)
async def test_a_bad_destination_is_refused_naming_it(
    api: httpx.AsyncClient,
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    transfer_feed: Feed,
    destination: str,
    why: str,
) -> None:
    intent_id = await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)

    response = await refund(
        api, merchant, payment_intent=intent_id, destination_address=destination
    )

    assert error(response) == (400, "invalid_destination", "destination_address")
    assert why in response.json()["error"]["message"]
    assert await disbursement_count(gateway_ctx) == 0


async def test_a_lowercase_address_has_no_checksum_to_check_and_is_taken(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent_id = await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)

    response = await refund(
        api, merchant, payment_intent=intent_id, destination_address=CUSTOMER.lower()
    )

    assert response.status_code == 200, response.text
    assert response.json()["destination_address"] == CUSTOMER


async def test_one_of_our_own_deposit_addresses_is_no_destination(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent_id = await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)
    other = await create_intent(gateway_ctx, merchant.id)

    for address in (
        other.deposit_address,
        (await load_intent(gateway_ctx, intent_id)).deposit_address,
    ):
        response = await refund(
            api, merchant, payment_intent=intent_id, destination_address=address
        )
        assert error(response) == (400, "invalid_destination", "destination_address")
        assert "deposit address" in response.json()["error"]["message"]


async def test_an_intent_with_nothing_confirmed_is_not_refundable(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    waiting = await create_intent(gateway_ctx, merchant.id)
    seen = await create_intent(gateway_ctx, merchant.id)
    await transfer_feed(ChainTx(seen.deposit_address, 25 * USDT).event("detected", 1))

    for intent in (waiting, seen):
        response = await refund(api, merchant, payment_intent=intent.id)
        assert error(response) == (400, "intent_not_refundable", "payment_intent")
    assert await disbursement_count(gateway_ctx) == 0


@pytest.mark.parametrize(
    ("amount", "param"),
    [("1.0000001", "amount"), ("0", "amount"), ("-1", "amount"), ("1e3", "amount")],
)
async def test_a_bad_amount_is_refused_naming_it(
    api: httpx.AsyncClient,
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    transfer_feed: Feed,
    amount: str,
    param: str,
) -> None:
    intent_id = await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)

    response = await refund(api, merchant, payment_intent=intent_id, amount=amount)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert await disbursement_count(gateway_ctx) == 0


async def test_another_merchants_intent_and_refund_are_not_found(
    api: httpx.AsyncClient,
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    merchant_factory: MerchantFactory,
    transfer_feed: Feed,
) -> None:
    intent_id = await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)
    mine = (await refund(api, merchant, payment_intent=intent_id, amount="1")).json()
    stranger = await merchant_factory("Stranger")

    assert error(await refund(api, stranger, payment_intent=intent_id)) == (
        404, "resource_missing", "payment_intent"
    )  # fmt: skip
    assert (await api.get(f"/v1/refunds/{mine['id']}", headers=stranger.headers)).status_code == 404
    assert (
        await api.post(f"/v1/refunds/{mine['id']}/cancel", headers=stranger.headers)
    ).status_code == 404
    listed = (await api.get("/v1/refunds", headers=stranger.headers)).json()
    assert listed["data"] == []
    # A refund is not a payout: the other resource does not know its id.
    assert (await api.get(f"/v1/payouts/{mine['id']}", headers=merchant.headers)).status_code == 404


async def test_twenty_concurrent_refunds_never_pass_what_is_refundable(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent_id = await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)

    responses = await asyncio.gather(
        *(refund(api, merchant, payment_intent=intent_id, amount="3") for _ in range(20))
    )

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 8 + [400] * 12, [r.text for r in responses if r.status_code != 400]
    assert {error(r)[1] for r in responses if r.status_code == 400} == {"amount_exceeds_refundable"}
    intent = await load_intent(gateway_ctx, intent_id)
    assert intent.amount_refunded_base_units == 24 * USDT
    async with gateway_ctx.db.sessions() as session:
        total = await session.scalar(select(func.sum(Disbursement.amount_base_units)))
    assert total == 24 * USDT


async def test_the_same_idempotency_key_replays_the_refund(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent_id = await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)
    body = {"payment_intent": intent_id, "destination_address": CUSTOMER, "amount": "2"}
    headers = {**merchant.headers, "Idempotency-Key": "refund-order-1042"}

    first = await api.post("/v1/refunds", json=body, headers=headers)
    again = await api.post("/v1/refunds", json=body, headers=headers)
    other = await api.post("/v1/refunds", json={**body, "amount": "3"}, headers=headers)

    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert other.status_code == 409
    assert await disbursement_count(gateway_ctx) == 1


async def test_a_pending_refund_is_canceled_and_its_amount_is_refundable_again(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent_id = await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)
    made = (await refund(api, merchant, payment_intent=intent_id, amount="25")).json()

    canceled = await api.post(f"/v1/refunds/{made['id']}/cancel", headers=merchant.headers)
    again = await api.post(f"/v1/refunds/{made['id']}/cancel", headers=merchant.headers)

    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert again.json()["status"] == "canceled"
    assert (await load_intent(gateway_ctx, intent_id)).amount_refunded_base_units == 0
    assert (await refund(api, merchant, payment_intent=intent_id)).json()["amount"] == "25.00"
    async with gateway_ctx.db.sessions() as session:
        types = list(
            await session.scalars(
                select(MerchantEvent.type)
                .where(MerchantEvent.object_id == made["id"])
                .order_by(MerchantEvent.id)
            )
        )
    assert types == ["refund.created", "refund.canceled"]


async def test_a_refund_past_pending_cannot_be_canceled(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent_id = await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)
    made = (await refund(api, merchant, payment_intent=intent_id, amount="1")).json()
    async with gateway_ctx.db.transaction() as session:
        row = await session.get(Disbursement, made["id"])
        assert row is not None
        row.status = "processing"

    response = await api.post(f"/v1/refunds/{made['id']}/cancel", headers=merchant.headers)

    assert error(response) == (409, "refund_not_cancelable", "id")


async def test_refunds_list_with_filters(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    first_intent = await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)
    second_intent = await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)
    a = (await refund(api, merchant, payment_intent=first_intent, amount="1")).json()
    b = (await refund(api, merchant, payment_intent=second_intent, amount="1")).json()
    await api.post(f"/v1/refunds/{a['id']}/cancel", headers=merchant.headers)

    def ids(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["data"]]

    assert ids(await api.get("/v1/refunds", headers=merchant.headers)) == [b["id"], a["id"]]
    assert ids(
        await api.get(f"/v1/refunds?payment_intent={first_intent}", headers=merchant.headers)
    ) == [a["id"]]
    assert ids(await api.get("/v1/refunds?status=pending", headers=merchant.headers)) == [b["id"]]
    bad = await api.get("/v1/refunds?status=lost", headers=merchant.headers)
    assert error(bad) == (400, "parameter_invalid", "status")


# --- payouts -----------------------------------------------------------------------------


async def set_ledger_balance(ctx: GatewayContext, merchant_id: str, available: int) -> None:
    async with ctx.db.transaction() as session:
        session.add(
            Balance(
                merchant_id=merchant_id,
                network="ethereum",
                asset="USDT",
                decimals=6,
                available_base_units=available,
                reserved_base_units=0,
                sequence=1,
            )
        )


async def payout(api: httpx.AsyncClient, merchant: ApiMerchant, **body: Any) -> httpx.Response:
    body = {"asset": "USDT", "network": "ethereum", "destination_address": CUSTOMER, **body}
    return await api.post("/v1/payouts", json=body, headers=merchant.headers)


async def test_a_payout_of_the_balance_and_not_a_unit_more(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)
    await set_ledger_balance(gateway_ctx, merchant.id, 25 * USDT)

    over = await payout(api, merchant, amount="25.000001")
    made = await payout(api, merchant, amount="25", description="settlement")
    after = await payout(api, merchant, amount="0.000001")

    assert error(over) == (400, "insufficient_balance", "amount")
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["id"].startswith("po_")
    assert (body["object"], body["status"], body["description"]) == (
        "payout",
        "pending",
        "settlement",
    )
    assert "payment_intent" not in body
    assert error(after) == (400, "insufficient_balance", "amount")


async def test_a_payout_is_bounded_by_the_ledger_while_it_lags(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    """The gateway saw 25 confirmed, the ledger has booked 10 so far: 10 is payable."""
    await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)
    await set_ledger_balance(gateway_ctx, merchant.id, 10 * USDT)

    assert error(await payout(api, merchant, amount="10.5")) == (
        400,
        "insufficient_balance",
        "amount",
    )
    assert (await payout(api, merchant, amount="10")).status_code == 200


async def test_refunds_and_payouts_racing_never_overdraw_the_merchant(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    intent_id = await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)
    await set_ledger_balance(gateway_ctx, merchant.id, 25 * USDT)

    responses = await asyncio.gather(
        *(payout(api, merchant, amount="5") for _ in range(10)),
        *(refund(api, merchant, payment_intent=intent_id, amount="5") for _ in range(10)),
    )

    assert sum(r.status_code == 200 for r in responses) == 5
    async with gateway_ctx.db.sessions() as session:
        total = await session.scalar(select(func.sum(Disbursement.amount_base_units)))
    assert total == 25 * USDT


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"network": "dogechain"}, 400, "unknown_network", "network"),
        ({"asset": "DAI"}, 400, "unknown_asset", "asset"),
        ({"amount": "1.0000001"}, 400, "invalid_amount", "amount"),
        ({"destination_address": TRON_CUSTOMER}, 400, "invalid_destination", "destination_address"),
        (
            {"network": "tron", "destination_address": CUSTOMER},
            400,
            "invalid_destination",
            "destination_address",
        ),
        ({"amount": 5}, 400, None, "amount"),
    ],
)
async def test_a_bad_payout_is_refused_naming_the_field(
    api: httpx.AsyncClient,
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    body: dict[str, Any],
    status: int,
    code: str | None,
    param: str,
) -> None:
    response = await payout(api, merchant, **{"amount": "1", **body})

    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
    if code is not None:
        assert response.json()["error"]["code"] == code
    assert await disbursement_count(gateway_ctx) == 0


async def test_above_the_merchants_limit_a_payout_needs_approval(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    await paid_intent(gateway_ctx, merchant, transfer_feed, sent=25 * USDT)
    await set_ledger_balance(gateway_ctx, merchant.id, 25 * USDT)
    async with gateway_ctx.db.transaction() as session:
        row = await session.get(Merchant, merchant.id)
        assert row is not None
        row.disbursement_approval_limit = Decimal("10")

    small = (await payout(api, merchant, amount="10")).json()
    large = (await payout(api, merchant, amount="10.000001")).json()

    assert (small["requires_approval"], large["requires_approval"]) == (False, True)
