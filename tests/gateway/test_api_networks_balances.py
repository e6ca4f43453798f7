"""`GET /v1/networks` and `GET /v1/balances`, fed by `chain.head` and `balance.updated`
events consumed from the real broker through the gateway's own consumers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from stablegate_common.events import Event, make_event
from stablegate_common.events.contracts import BalanceUpdated, ChainHead
from stablegate_gateway.app import CONSUMERS, consume
from stablegate_gateway.balances.consumers import on_balance_updated
from stablegate_gateway.balances.schemas import BalanceList
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.networks.consumers import on_chain_head
from stablegate_gateway.networks.schemas import NetworkList
from tests.fixtures.bus import BusFactory, eventually
from tests.fixtures.gateway import ApiMerchant, MerchantFactory


def head_event(network: str, head: int, scanned: int, *, at: datetime | None = None) -> Event:
    payload = ChainHead(
        network=network, head_block=head, scanned_block=scanned, head_timestamp=datetime.now(UTC)
    )
    return make_event(payload, producer="watcher", subject=network, sequence=head, occurred_at=at)


def balance_event(
    merchant_id: str, base_units: int, sequence: int, *, network: str = "bsc", reserved: int = 0
) -> Event:
    payload = BalanceUpdated(
        merchant_id=merchant_id,
        network=network,
        asset="USDT",
        decimals=18 if network == "bsc" else 6,
        available_base_units=base_units,
        reserved_base_units=reserved,
    )
    return make_event(
        payload, producer="reconciler", subject=f"{merchant_id}:{network}:USDT", sequence=sequence
    )


async def networks(api: httpx.AsyncClient, merchant: ApiMerchant) -> dict[str, dict[str, Any]]:
    response = await api.get("/v1/networks", headers=merchant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    NetworkList.model_validate(body)
    return {n["id"]: n for n in body["data"]}


async def balances(api: httpx.AsyncClient, merchant: ApiMerchant) -> list[dict[str, Any]]:
    response = await api.get("/v1/balances", headers=merchant.headers)
    assert response.status_code == 200, response.text
    BalanceList.model_validate(response.json())
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def apply(ctx: GatewayContext, handler: Any, event: Event) -> None:
    async with ctx.db.transaction() as session:
        await handler(session, event)


async def test_events_from_the_bus_reach_both_endpoints(
    api: httpx.AsyncClient,
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    bus_factory: BusFactory,
) -> None:
    gateway_bus = await bus_factory(service="gateway")
    await consume(gateway_ctx.db, gateway_bus, CONSUMERS)
    publisher = await bus_factory(service="test")
    await publisher.publish(
        [
            head_event("ethereum", 1000, 995),
            balance_event(merchant.id, 1_250_500 * 10**15, 1, reserved=2 * 10**18),
        ]
    )

    async def arrived() -> bool:
        eth = (await networks(api, merchant))["ethereum"]
        return eth["head_block"] == 1000 and len(await balances(api, merchant)) == 1

    await eventually(arrived)
    eth = (await networks(api, merchant))["ethereum"]
    assert (eth["scanned_block"], eth["watcher_lag_blocks"], eth["status"]) == (995, 5, "ok")
    assert 0 <= eth["watcher_lag_seconds"] < 10
    assert await balances(api, merchant) == [
        {
            "object": "balance",
            "network": "bsc",
            "asset": "USDT",
            "decimals": 18,
            "amount": "1250.50",
            "amount_base_units": "1250500000000000000000",
            "available": "1250.50",
            "available_base_units": "1250500000000000000000",
            "reserved": "2.00",
            "reserved_base_units": "2000000000000000000",
        }
    ]


async def test_networks_lists_the_registry_with_watcher_health(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    stale = datetime.now(UTC) - timedelta(minutes=10)
    await apply(gateway_ctx, on_chain_head, head_event("bsc", 500, 400))  # 100 blocks behind
    await apply(gateway_ctx, on_chain_head, head_event("tron", 70, 70, at=stale))
    found = await networks(api, merchant)
    assert list(found) == ["bsc", "ethereum", "tron"]
    eth = found["ethereum"]
    assert eth == {
        "id": "ethereum",
        "object": "network",
        "name": "Ethereum (ERC-20)",
        "chain_id": 1,
        "confirmations_required": 12,
        "native_symbol": "ETH",
        "assets": [
            {
                "symbol": "USDT",
                "token_contract": "0xdAC17F958D2ee523a2206206994597C13D831ec7",
                "decimals": 6,
            },
            {
                "symbol": "USDC",
                "token_contract": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
                "decimals": 6,
            },
        ],
        "head_block": None,
        "scanned_block": None,
        "watcher_lag_seconds": None,
        "watcher_lag_blocks": None,
        "status": "unknown",
    }
    assert (found["bsc"]["status"], found["bsc"]["watcher_lag_blocks"]) == ("lagging", 100)
    assert found["tron"]["status"] == "lagging"
    assert found["tron"]["watcher_lag_seconds"] >= 599
    assert found["tron"]["chain_id"] is None
    assert found["tron"]["assets"][0]["token_contract"] == "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"


async def test_an_older_head_never_replaces_a_newer_one(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    now = datetime.now(UTC)
    await apply(gateway_ctx, on_chain_head, head_event("ethereum", 200, 200, at=now))
    # Delivered late: observed before the stored one.
    await apply(
        gateway_ctx, on_chain_head, head_event("ethereum", 150, 150, at=now - timedelta(seconds=5))
    )
    assert (await networks(api, merchant))["ethereum"]["head_block"] == 200
    # Observed later but behind the stored scan (a watcher replaying): also ignored.
    await apply(
        gateway_ctx, on_chain_head, head_event("ethereum", 199, 199, at=now + timedelta(seconds=1))
    )
    assert (await networks(api, merchant))["ethereum"]["head_block"] == 200
    # Same head, a later report: the watcher is alive, progress is kept.
    await apply(
        gateway_ctx, on_chain_head, head_event("ethereum", 201, 200, at=now + timedelta(seconds=2))
    )
    eth = (await networks(api, merchant))["ethereum"]
    assert (eth["head_block"], eth["scanned_block"], eth["watcher_lag_blocks"]) == (201, 200, 1)


async def test_balances_apply_only_newer_sequences_and_stay_private(
    api: httpx.AsyncClient,
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    merchant_factory: MerchantFactory,
) -> None:
    other = await merchant_factory(name="Other Shop")
    await apply(gateway_ctx, on_balance_updated, balance_event(merchant.id, 3 * 10**18, 3))
    await apply(gateway_ctx, on_balance_updated, balance_event(merchant.id, 2 * 10**18, 2))
    await apply(
        gateway_ctx,
        on_balance_updated,
        balance_event(merchant.id, 7_000_000, 1, network="ethereum"),
    )
    await apply(gateway_ctx, on_balance_updated, balance_event(other.id, 10**18, 1))
    mine = await balances(api, merchant)
    assert [(b["network"], b["amount"]) for b in mine] == [("bsc", "3.00"), ("ethereum", "7.00")]
    await apply(gateway_ctx, on_balance_updated, balance_event(merchant.id, 4 * 10**18, 4))
    assert (await balances(api, merchant))[0]["amount_base_units"] == str(4 * 10**18)
    assert [b["amount"] for b in await balances(api, other)] == ["1.00"]


@pytest.mark.parametrize("path", ["/v1/networks", "/v1/balances"])
async def test_both_need_authentication(api: httpx.AsyncClient, path: str) -> None:
    response = await api.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"
