"""Payment intents through the API: the public object, what a creation writes (address,
intent, bus events, merchant event, all in one transaction), reading, listing and
cancelling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stablegate_common.bus import OutboxMessage
from stablegate_common.hd import DEVNET_EVM_XPUB, DEVNET_TRON_XPUB, AddressDeriver
from stablegate_gateway.addresses.models import DepositAddress
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.events.models import MerchantEvent
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.intents.schemas import PaymentIntentOut
from stablegate_gateway.networks.models import NetworkHead
from stablegate_gateway.transfers.models import Transfer
from tests.fixtures.gateway import ApiMerchant, intent_body, written

USDT_ETH = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
FIRST_EVM_ADDRESS = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"  # devnet xpub, index 0


async def create(api: httpx.AsyncClient, merchant: ApiMerchant, **body: Any) -> dict[str, Any]:
    response = await api.post(
        "/v1/payment_intents", json=intent_body(**body), headers=merchant.headers
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def outbox(ctx: GatewayContext) -> list[OutboxMessage]:
    async with ctx.db.sessions() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_create_returns_the_public_intent_object(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    before = datetime.now(UTC)
    intent = await create(
        api,
        merchant,
        amount="25.5",
        reference="order-1042",
        description="2 x T-shirt",
        metadata={"customer": "cus_881"},
    )
    PaymentIntentOut.model_validate(intent)  # every documented field, nothing else
    assert intent["id"].startswith("pi_")
    assert len(intent["id"]) == 29
    assert intent["object"] == "payment_intent"
    assert (intent["status"], intent["exception"]) == ("awaiting_payment", None)
    assert (intent["network"], intent["asset"], intent["currency"]) == ("ethereum", "USDT", "USDT")
    assert (intent["token_contract"], intent["decimals"]) == (USDT_ETH, 6)
    assert (intent["amount"], intent["amount_base_units"]) == ("25.50", "25500000")
    assert intent["amount_received"] == intent["amount_confirmed"] == "0.00"
    assert intent["amount_remaining"] == "25.50"
    assert intent["deposit_address"] == FIRST_EVM_ADDRESS
    assert intent["payment_uri"] == (
        f"ethereum:{USDT_ETH}@1/transfer?address={FIRST_EVM_ADDRESS}&uint256=25500000"
    )
    assert intent["checkout_url"] == f"https://pay.example.test/pay/{intent['id']}"
    assert intent["confirmations_required"] == 12
    created = datetime.fromisoformat(intent["created_at"])
    assert intent["created_at"].endswith("Z")
    assert before <= created <= datetime.now(UTC)
    assert datetime.fromisoformat(intent["expires_at"]) - created == timedelta(hours=1)
    assert (intent["reference"], intent["description"]) == ("order-1042", "2 x T-shirt")
    assert intent["metadata"] == {"customer": "cus_881"}
    assert intent["transfers"] == []


async def test_create_writes_address_intent_and_events_together(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant)
    async with gateway_ctx.db.sessions() as session:
        row = await session.get(PaymentIntent, intent["id"])
        address = await session.scalar(
            select(DepositAddress).where(DepositAddress.intent_id == intent["id"])
        )
        events = list(await session.scalars(select(MerchantEvent)))
    assert row is not None
    assert address is not None
    assert (row.version, row.merchant_id, row.deposit_address_id) == (1, merchant.id, address.id)
    assert (address.status, address.network, address.derivation_index) == (
        "allocated",
        "ethereum",
        0,
    )
    assert address.address == FIRST_EVM_ADDRESS.lower()
    assert address.allocated_at is not None
    rows = await outbox(gateway_ctx)
    assert [r.routing_key for r in rows] == ["address.provisioned", "intent.created"]
    provisioned = rows[0].body
    assert provisioned["subject"] == "evm"
    assert provisioned["data"]["first_index"] == 0
    assert provisioned["data"]["addresses"] == AddressDeriver(DEVNET_EVM_XPUB, "evm").derive_range(
        0, 10
    )
    created = rows[1].body
    assert (created["subject"], created["sequence"]) == (intent["id"], 1)
    assert created["data"]["amount_base_units"] == "25000000"
    assert [(e.type, e.object_id) for e in events] == [("payment_intent.created", intent["id"])]
    assert events[0].data["object"] == intent


async def test_each_intent_gets_its_own_address_and_the_pool_grows_by_batches(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    intents = [await create(api, merchant) for _ in range(12)]  # batch size is 10
    addresses = [i["deposit_address"] for i in intents]
    assert len(set(addresses)) == 12
    provisioned = [
        r.body["data"] for r in await outbox(gateway_ctx) if r.routing_key == "address.provisioned"
    ]
    assert [(p["first_index"], len(p["addresses"])) for p in provisioned] == [(0, 10), (10, 10)]
    state = await written(gateway_ctx)
    assert (state.addresses, state.allocated_addresses, state.intents) == (20, 12, 12)


@pytest.mark.parametrize(
    ("network", "currency", "amount", "base_units", "chain_id", "decimals"),
    [
        ("bsc", "USDT", "1.5", "1500000000000000000", 56, 18),
        ("bsc", "usdc", "0.000000000000000001", "1", 56, 18),
        ("ethereum", "USDC", "1000000", "1000000000000", 1, 6),
    ],
)
async def test_amounts_follow_the_assets_decimals(
    api: httpx.AsyncClient,
    merchant: ApiMerchant,
    network: str,
    currency: str,
    amount: str,
    base_units: str,
    chain_id: int,
    decimals: int,
) -> None:
    intent = await create(
        api, merchant, network=network, currency=currency, amount=amount, asset=currency
    )
    assert (intent["amount_base_units"], intent["decimals"]) == (base_units, decimals)
    assert intent["asset"] == currency.upper()
    assert intent["payment_uri"].startswith(f"ethereum:{intent['token_contract']}@{chain_id}/")
    assert intent["payment_uri"].endswith(f"&uint256={base_units}")


@pytest.mark.parametrize("gateway_settings", [{"confirmations": {"ethereum": 3}}], indirect=True)
async def test_configured_confirmations_and_expiry(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant, expires_in=600)
    assert intent["confirmations_required"] == 3
    expires = datetime.fromisoformat(intent["expires_at"])
    assert expires - datetime.fromisoformat(intent["created_at"]) == timedelta(seconds=600)


async def test_tron_is_refused_without_its_xpub(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    before = await written(gateway_ctx)
    refused = await api.post(
        "/v1/payment_intents", json=intent_body(network="tron"), headers=merchant.headers
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "network_unavailable"
    assert refused.json()["error"]["param"] == "network"
    assert await written(gateway_ctx) == before


@pytest.mark.parametrize("gateway_settings", [{"tron_xpub": DEVNET_TRON_XPUB}], indirect=True)
async def test_tron_intents_use_base58_addresses_and_the_bare_address_as_uri(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant, network="tron")
    assert intent["deposit_address"] == AddressDeriver(DEVNET_TRON_XPUB, "tron").derive(0)
    assert intent["deposit_address"].startswith("T")
    assert intent["token_contract"] == "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    assert intent["payment_uri"] == intent["deposit_address"]


async def test_retrieve_shows_transfers_with_confirmations_from_the_head(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant)
    now = datetime.now(UTC)
    sender = "0x" + "ab" * 20

    def transfer(n: int, block: int, status: str, amount: int, seen: int = 0) -> Transfer:
        return Transfer(
            id=f"tr_01JDQ3M4W6Z0E9T0QJX1N2Y3Z{n}",
            intent_id=intent["id"],
            network="ethereum",
            token_contract=USDT_ETH.lower(),
            tx_hash=f"0x{n:064x}",
            log_index=n,
            block_number=block,
            block_hash="0x" + "00" * 32,
            block_timestamp=now,
            from_address=sender,
            to_address=intent["deposit_address"].lower(),
            amount_base_units=amount,
            status=status,
            confirmations=seen,
        )

    async with gateway_ctx.db.transaction() as session:
        session.add_all(
            [
                transfer(1, 100, "confirmed", 10_000_000),
                transfer(2, 110, "pending", 5_000_000),
                transfer(3, 95, "reverted", 1_000_000),
                transfer(4, 120, "pending", 1_000_000, seen=2),
            ]
        )
        row = await session.get(PaymentIntent, intent["id"])
        assert row is not None
        row.amount_confirmed_base_units = 10_000_000
        row.amount_pending_base_units = 6_000_000
        session.add(
            NetworkHead(
                network="ethereum",
                head_block=114,
                scanned_block=114,
                head_timestamp=now,
                observed_at=now,
            )
        )
    response = await api.get(f"/v1/payment_intents/{intent['id']}", headers=merchant.headers)
    body = response.json()
    PaymentIntentOut.model_validate(body)
    assert (body["amount_received"], body["amount_confirmed"], body["amount_remaining"]) == (
        "16.00",
        "10.00",
        "15.00",
    )
    shown = {t["id"][-1]: t for t in body["transfers"]}
    assert [t["block_number"] for t in body["transfers"]] == [95, 100, 110, 120]
    assert shown["1"]["confirmations"] == 12  # confirmed counts as the required depth
    assert shown["2"]["confirmations"] == 5  # 114 - 110 + 1
    assert shown["3"]["confirmations"] == 0  # reverted
    assert shown["4"]["confirmations"] == 2  # head behind the block: the watcher's count
    assert shown["2"]["from_address"] == "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
    assert (shown["2"]["amount"], shown["2"]["amount_base_units"]) == ("5.00", "5000000")
    assert shown["2"]["object"] == "transfer"
    assert shown["2"]["status"] == "pending"


async def test_list_pages_newest_first_in_both_directions(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    ids = [(await create(api, merchant))["id"] for _ in range(5)]
    newest_first = ids[::-1]

    async def page(query: str) -> tuple[list[str], bool]:
        response = await api.get(f"/v1/payment_intents?{query}", headers=merchant.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["object"], body["url"]) == ("list", "/v1/payment_intents")
        return [i["id"] for i in body["data"]], body["has_more"]

    assert await page("") == (newest_first, False)
    assert await page("limit=2") == (newest_first[:2], True)
    assert await page(f"limit=2&starting_after={newest_first[1]}") == (newest_first[2:4], True)
    assert await page(f"limit=2&starting_after={newest_first[3]}") == (newest_first[4:], False)
    assert await page(f"limit=2&ending_before={newest_first[4]}") == (newest_first[2:4], True)
    assert await page(f"limit=2&ending_before={newest_first[2]}") == (newest_first[:2], False)
    assert await page(f"ending_before={newest_first[0]}") == ([], False)


async def test_list_filters(api: httpx.AsyncClient, merchant: ApiMerchant) -> None:
    first = await create(api, merchant, reference="order-1")
    second = await create(api, merchant, network="bsc", reference="order-2")
    third = await create(api, merchant, reference="order-3")
    await api.post(f"/v1/payment_intents/{third['id']}/cancel", headers=merchant.headers)

    async def ids(query: str) -> list[str]:
        response = await api.get(f"/v1/payment_intents?{query}", headers=merchant.headers)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["data"]]

    assert await ids("status=canceled") == [third["id"]]
    assert await ids("status=awaiting_payment") == [second["id"], first["id"]]
    assert await ids("network=bsc") == [second["id"]]
    assert await ids("reference=order-1") == [first["id"]]
    assert await ids("network=ethereum&status=awaiting_payment") == [first["id"]]
    gte = httpx.QueryParams({"created_gte": second["created_at"]})
    assert await ids(str(gte)) == [third["id"], second["id"]]
    lte = httpx.QueryParams({"created_lte": second["created_at"]})
    assert await ids(str(lte)) == [second["id"], first["id"]]
    later = int(datetime.fromisoformat(third["created_at"]).timestamp()) + 1
    assert await ids(f"created_gte={later}") == []
    assert await ids(f"created_lte={later}") == [third["id"], second["id"], first["id"]]


async def test_cancel_ends_the_intent_and_cools_its_address(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant)
    response = await api.post(
        f"/v1/payment_intents/{intent['id']}/cancel", headers=merchant.headers
    )
    assert response.status_code == 200, response.text
    canceled = response.json()
    assert (canceled["status"], canceled["id"]) == ("canceled", intent["id"])
    assert {k: v for k, v in canceled.items() if k != "status"} == {
        k: v for k, v in intent.items() if k != "status"
    }
    async with gateway_ctx.db.sessions() as session:
        row = await session.get(PaymentIntent, intent["id"])
        address = await session.scalar(
            select(DepositAddress).where(DepositAddress.intent_id == intent["id"])
        )
        events = list(await session.scalars(select(MerchantEvent).order_by(MerchantEvent.id)))
    assert row is not None
    assert row.version == 2
    assert row.canceled_at is not None
    assert address is not None
    assert address.status == "cooling"
    assert address.cooling_until is not None
    cooldown = address.cooling_until - row.canceled_at
    assert cooldown == timedelta(seconds=gateway_ctx.settings.gateway.address_cooldown_seconds)
    assert [e.type for e in events] == ["payment_intent.created", "payment_intent.canceled"]
    updated = (await outbox(gateway_ctx))[-1].body
    assert (updated["type"], updated["sequence"]) == ("intent.updated", 2)
    assert updated["data"]["previous_status"] == "awaiting_payment"


async def test_cancel_is_refused_once_ended_or_funded(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    ended = await create(api, merchant)
    path = f"/v1/payment_intents/{ended['id']}/cancel"
    assert (await api.post(path, headers=merchant.headers)).status_code == 200
    again = await api.post(path, headers=merchant.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "intent_not_cancelable"

    funded = await create(api, merchant)
    async with gateway_ctx.db.transaction() as session:
        row = await session.get(PaymentIntent, funded["id"])
        assert row is not None
        row.status, row.amount_pending_base_units = "confirming", 1_000_000
    before = await written(gateway_ctx)
    refused = await api.post(f"/v1/payment_intents/{funded['id']}/cancel", headers=merchant.headers)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "intent_not_cancelable")
    assert await written(gateway_ctx) == before
    still = await api.get(f"/v1/payment_intents/{funded['id']}", headers=merchant.headers)
    assert still.json()["status"] == "confirming"
