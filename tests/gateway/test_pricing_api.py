"""Fiat pricing and fees through `POST /v1/payment_intents` on the real PostgreSQL: a
USD or EUR price converted at a locked rate, refusals that write nothing (stale feed,
de-pegged asset, bad terms), the fee quote on the intent, and a customer-paid fee that
the payment URI, the state machine and the stored row all agree on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from stablegate_common.events import Event
from stablegate_common.hd import DEVNET_TRON_XPUB
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.intents.schemas import PaymentIntentOut
from stablegate_gateway.merchants.models import Merchant
from stablegate_gateway.pricing.config import PricingConfig
from stablegate_gateway.settings import GatewaySettings
from tests.fixtures.gateway import ApiMerchant, SettingsFactory, intent_body, written
from tests.fixtures.payments import USDC_ETHEREUM, ChainTx, load_intent
from tests.fixtures.ratefeed import RateFeed, closed_port_url

Feed = Callable[[Event], Awaitable[None]]
USDT = 10**6
DEPOSIT_URI = "ethereum:0xdAC17F958D2ee523a2206206994597C13D831ec7@1/transfer?address="
RATES = {
    "USDT/USD": "1.0001",
    "USDC/USD": "0.9998",
    "EUR/USD": "1.08",
    "ETH/USD": "3000",
    "BNB/USD": "600",
    "TRX/USD": "0.25",
}
# 65,000 gas x (10 + 1) gwei = 0.000715 ETH; at 3000 USD and USDT at 1.0001 USD:
# one ETH is 2999.700029997000 USDT, so the network fee is 2.1447855… → 2.144786 USDT.
ETH_NETWORK_FEE = 2_144_786


@pytest.fixture
def pricing_config(request: pytest.FixtureRequest, rate_feed: RateFeed) -> PricingConfig:
    """Per test with `@pytest.mark.parametrize("pricing_config", [{…}], indirect=True)`;
    an `http` provider reads the test's `rate_feed` unless a URL is given."""
    overrides: dict[str, Any] = {"rates_static": RATES, **getattr(request, "param", {})}
    if overrides.get("rates_provider") == "http":
        overrides.setdefault("rates_url", rate_feed.url)
    return PricingConfig(**overrides)


@pytest.fixture
def gateway_settings(
    gateway_settings_factory: SettingsFactory, pricing_config: PricingConfig
) -> GatewaySettings:
    settings = gateway_settings_factory(tron_xpub=DEVNET_TRON_XPUB)
    settings.pricing = pricing_config
    return settings


@pytest.fixture(autouse=True)
async def _close_pricing(gateway_ctx: GatewayContext) -> AsyncIterator[None]:
    """The context builds `pricing` on first use; its HTTP clients close with the test."""
    yield
    if "pricing" in gateway_ctx.__dict__:
        await gateway_ctx.pricing.close()


async def post(api: httpx.AsyncClient, merchant: ApiMerchant, **body: Any) -> httpx.Response:
    return await api.post("/v1/payment_intents", json=intent_body(**body), headers=merchant.headers)


async def create(api: httpx.AsyncClient, merchant: ApiMerchant, **body: Any) -> dict[str, Any]:
    response = await post(api, merchant, **body)
    assert response.status_code == 200, response.text
    intent: dict[str, Any] = response.json()
    PaymentIntentOut.model_validate(intent)
    return intent


def assert_error(response: httpx.Response, status: int, code: str, param: str | None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    return str(error["message"])


def due_of(amount: str, rate: str, decimals: int) -> int:
    """The exact conversion, rounded up: the oracle the gateway's Decimals must match."""
    exact = Fraction(Decimal(amount)) / Fraction(Decimal(rate)) * 10**decimals
    return int(-(-exact // 1))


async def test_a_usd_price_is_converted_at_a_rate_locked_until_expiry(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant, currency="USD", asset="USDT", amount="25.00")
    assert (intent["currency"], intent["asset"], intent["amount"]) == ("USD", "USDT", "25.00")
    assert (intent["rate"], intent["rate_source"]) == ("1.0001", "static")
    assert intent["rate_locked_until"] == intent["expires_at"]
    due = due_of("25.00", "1.0001", 6)
    assert due == 24_997_501  # 24.99750024…: rounded up, never down
    assert intent["amount_base_units"] == str(due)
    assert intent["amount_due"] == intent["amount_remaining"] == "24.997501"
    assert intent["payment_uri"].endswith(f"&uint256={due}")
    assert intent["fees"] == {
        "currency": "USDT",
        "network_fee": "2.144786",
        "processing_fee": "0.00",
        "total": "2.144786",
    }
    assert intent["fee_payer"] == "merchant"


@pytest.mark.parametrize(
    ("network", "asset", "rate", "decimals"),
    [
        ("ethereum", "USDT", "0.926018518519", 6),  # 1.0001 / 1.08
        ("ethereum", "USDC", "0.925740740741", 6),  # 0.9998 / 1.08
        ("bsc", "USDT", "0.926018518519", 18),
        ("tron", "USDT", "0.926018518519", 6),
    ],
)
async def test_a_eur_price_on_each_network(
    api: httpx.AsyncClient,
    merchant: ApiMerchant,
    network: str,
    asset: str,
    rate: str,
    decimals: int,
) -> None:
    intent = await create(
        api, merchant, network=network, currency="eur", asset=asset, amount="19.99"
    )
    assert (intent["currency"], intent["amount"], intent["rate"]) == ("EUR", "19.99", rate)
    assert intent["decimals"] == decimals
    assert intent["amount_base_units"] == str(due_of("19.99", rate, decimals))


async def test_the_example_of_the_pricing_docs(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    intent = await create(
        api, merchant, amount="25.00", currency="EUR", asset="USDT", fee_payer="customer"
    )
    assert intent["rate"] == "0.926018518519"
    assert (intent["amount_due"], intent["amount_base_units"]) == ("29.142087", "29142087")


async def test_a_token_price_keeps_its_amount_and_has_no_rate(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant, currency="USDT", amount="25.50")
    assert (intent["currency"], intent["amount"], intent["amount_due"]) == (
        "USDT",
        "25.50",
        "25.50",
    )
    assert intent["amount_base_units"] == "25500000"
    assert (intent["rate"], intent["rate_source"], intent["rate_locked_until"]) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"currency": "USD"}, 400, "parameter_missing", "asset"),
        ({"currency": "USD", "asset": "DAI"}, 400, "unknown_asset", "asset"),
        ({"currency": "GBP", "asset": "USDT"}, 400, "unknown_asset", "currency"),
        ({"currency": "USD", "asset": "USDT", "amount": "25.001"}, 400, "invalid_amount", "amount"),
        ({"currency": "USD", "asset": "USDT", "amount": "0.00"}, 400, "invalid_amount", "amount"),
        (
            {"currency": "EUR", "asset": "USDT", "expires_in": 86_401},
            400,
            "parameter_invalid",
            "expires_in",
        ),
        ({"fee_payer": "nobody"}, 400, "parameter_invalid", "fee_payer"),
    ],
)
async def test_bad_pricing_terms_are_refused_and_nothing_is_written(
    api: httpx.AsyncClient,
    merchant: ApiMerchant,
    gateway_ctx: GatewayContext,
    body: dict[str, Any],
    status: int,
    code: str,
    param: str,
) -> None:
    before = await written(gateway_ctx)
    assert_error(await post(api, merchant, **body), status, code, param)
    assert await written(gateway_ctx) == before


@pytest.mark.parametrize(
    "pricing_config",
    [{"rates_provider": "http", "rates_max_age_seconds": 60, "rates_ttl_seconds": 0.2}],
    indirect=True,
)
async def test_a_stale_feed_is_a_503_and_nothing_is_written(
    api: httpx.AsyncClient, merchant: ApiMerchant, gateway_ctx: GatewayContext, rate_feed: RateFeed
) -> None:
    rate_feed.age = timedelta(minutes=5)
    before = await written(gateway_ctx)
    response = await post(api, merchant, currency="USD", asset="USDT")
    message = assert_error(response, 503, "rates_unavailable", None)
    assert "over the 60 s limit" in message
    assert response.json()["error"]["type"] == "api_error"
    assert response.headers["Request-Id"] == response.json()["error"]["request_id"]
    assert await written(gateway_ctx) == before
    # Fees need the native coin's price too: a token-priced intent waits for the feed as well.
    assert_error(await post(api, merchant), 503, "rates_unavailable", None)
    rate_feed.age = timedelta(0)  # the feed recovers; the next refresh is due after the TTL
    await asyncio.sleep(0.25)
    intent = await create(api, merchant, currency="USD", asset="USDT")
    assert (intent["rate"], intent["rate_source"]) == ("1.0000", "test-feed")


@pytest.mark.parametrize(
    "pricing_config", [{"rates_provider": "http", "rates_url": closed_port_url()}], indirect=True
)
async def test_a_feed_that_is_down_is_a_503_and_nothing_is_written(
    api: httpx.AsyncClient, merchant: ApiMerchant, gateway_ctx: GatewayContext
) -> None:
    before = await written(gateway_ctx)
    message = assert_error(
        await post(api, merchant, currency="EUR", asset="USDC"), 503, "rates_unavailable", None
    )
    assert "has not answered yet" in message
    assert await written(gateway_ctx) == before


@pytest.mark.parametrize(
    "pricing_config", [{"rates_static": {**RATES, "USDT/USD": "0.9700"}}], indirect=True
)
async def test_a_depegged_stablecoin_is_refused_for_fiat_prices(
    api: httpx.AsyncClient, merchant: ApiMerchant, gateway_ctx: GatewayContext
) -> None:
    before = await written(gateway_ctx)
    message = assert_error(
        await post(api, merchant, currency="USD", asset="USDT"), 409, "asset_depegged", "asset"
    )
    assert "USDT trades at 0.9700 USD" in message
    assert await written(gateway_ctx) == before
    # Another stablecoin still prices; a price in the token itself is not a conversion.
    assert (await create(api, merchant, currency="USD", asset="USDC"))["asset"] == "USDC"
    assert (await create(api, merchant, currency="USDT"))["amount_base_units"] == "25000000"


@pytest.mark.parametrize(
    "pricing_config", [{"rates_static": {**RATES, "USDC/USD": "1.03"}}], indirect=True
)
async def test_a_stablecoin_above_the_band_is_refused_too(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    response = await post(api, merchant, currency="EUR", asset="USDC")
    assert_error(response, 409, "asset_depegged", "asset")


FEES = {"fee_percent": "1", "fee_fixed": "0.30", "fee_network_coefficients": {"ethereum": "1"}}


@pytest.mark.parametrize("pricing_config", [FEES], indirect=True)
async def test_a_customer_paid_fee_is_added_to_what_the_customer_sends(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant, amount="25.00", fee_payer="customer")
    network_fee, processing_fee = ETH_NETWORK_FEE, 25 * USDT // 100 + 300_000
    due = 25 * USDT + network_fee + processing_fee
    assert intent["fees"] == {
        "currency": "USDT",
        "network_fee": "2.144786",
        "processing_fee": "0.55",
        "total": "2.694786",
    }
    assert (intent["amount"], intent["amount_due"]) == ("25.00", "27.694786")
    assert intent["amount_base_units"] == str(due)
    assert intent["amount_remaining"] == "27.694786"
    assert intent["payment_uri"] == f"{DEPOSIT_URI}{intent['deposit_address']}&uint256={due}"
    assert intent["fee_payer"] == "customer"

    merchant_paid = await create(api, merchant, amount="25.00")
    assert merchant_paid["fee_payer"] == "merchant"
    assert merchant_paid["fees"] == intent["fees"]
    assert (merchant_paid["amount_due"], merchant_paid["amount_base_units"]) == (
        "25.00",
        "25000000",
    )


@pytest.mark.parametrize("pricing_config", [FEES], indirect=True)
async def test_the_state_machine_counts_against_the_amount_due(
    api: httpx.AsyncClient,
    merchant: ApiMerchant,
    gateway_ctx: GatewayContext,
    transfer_feed: Feed,
) -> None:
    intent = await create(api, merchant, currency="USD", asset="USDT", fee_payer="customer")
    due = int(intent["amount_base_units"])
    price = due_of("25.00", "1.0001", 6)
    assert due > price
    address = intent["deposit_address"].lower()
    await transfer_feed(ChainTx(address, price).event("confirmed", 1))  # the price, no fee
    assert (await load_intent(gateway_ctx, intent["id"])).status == "partially_paid"
    await transfer_feed(ChainTx(address, due - price, log_index=1).event("confirmed", 1))
    paid = await load_intent(gateway_ctx, intent["id"])
    assert (paid.status, paid.exception, paid.amount_confirmed_base_units) == ("paid", None, due)


@pytest.mark.parametrize("pricing_config", [FEES], indirect=True)
async def test_merchant_fee_settings_override_the_defaults_and_the_request_overrides_the_payer(
    api: httpx.AsyncClient, merchant: ApiMerchant, gateway_ctx: GatewayContext
) -> None:
    async with gateway_ctx.db.transaction() as session:
        await session.execute(
            update(Merchant)
            .where(Merchant.id == merchant.id)
            .values(fee_percent=Decimal(2), fee_min=Decimal(1), fee_payer="customer")
        )
    intent = await create(api, merchant, amount="10.00", currency="USDC")
    # 2 % of 10 + 0.30 (the default fixed part) = 0.50, lifted to the merchant's 1.00
    assert intent["fees"]["processing_fee"] == "1.00"
    assert intent["fee_payer"] == "customer"
    assert intent["token_contract"].lower() == USDC_ETHEREUM
    overridden = await create(api, merchant, amount="10.00", fee_payer="merchant")
    assert (overridden["fee_payer"], overridden["amount_due"]) == ("merchant", "10.00")


async def test_the_quote_and_its_inputs_are_stored_with_the_intent(
    api: httpx.AsyncClient, merchant: ApiMerchant, gateway_ctx: GatewayContext
) -> None:
    intent = await create(api, merchant, currency="EUR", asset="USDT", amount="100.00")
    row = await load_intent(gateway_ctx, intent["id"])
    assert (row.currency, row.amount_requested, row.rate) == (
        "EUR",
        Decimal("100.00"),
        Decimal("0.926018518519"),
    )
    assert row.rate_locked_until == datetime.fromisoformat(intent["expires_at"])
    assert (row.network_fee_base_units, row.processing_fee_base_units) == (ETH_NETWORK_FEE, 0)
    assert row.pricing_details is not None
    assert row.pricing_details["network_cost.base_fee_wei"] == str(10 * 10**9)
    assert row.pricing_details["native_price"] == "1 ETH = 2999.700029997000 USDT"
    # Read back through the API, the intent says the same.
    again = await api.get(f"/v1/payment_intents/{intent['id']}", headers=merchant.headers)
    assert {k: again.json()[k] for k in ("amount", "rate", "fees")} == {
        k: intent[k] for k in ("amount", "rate", "fees")
    }
