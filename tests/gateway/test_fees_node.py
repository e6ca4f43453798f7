"""Network-fee inputs read from a real node (the session `anvil`): `EvmClient.gas_price`
and `fee_history` against the node's own answers, the EIP-1559 and legacy readings of
`EvmNodeFeeInputs`, and an intent whose network fee comes from the node's gas price."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from fractions import Fraction
from statistics import median_low
from typing import Any

import httpx
import pytest

from stablegate_common.chains.evm import EvmClient
from stablegate_common.core.money import format_amount
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.core.fees import Eip1559Gas, LegacyGas, NetworkFeeUnavailable
from stablegate_gateway.fees.inputs import FEE_HISTORY_BLOCKS, NetworkFeeInputBook
from stablegate_gateway.pricing.config import PricingConfig
from stablegate_gateway.settings import GatewaySettings
from tests.fixtures.anvil import AnvilChain
from tests.fixtures.gateway import ApiMerchant, SettingsFactory, intent_body, written
from tests.fixtures.ratefeed import closed_port_url

GWEI = 10**9
RATES = {"USDT/USD": "1", "USDC/USD": "1", "ETH/USD": "3000", "BNB/USD": "600", "TRX/USD": "0.25"}


@pytest.fixture
async def client(anvil: AnvilChain) -> AsyncIterator[EvmClient]:
    async with EvmClient(anvil.rpc_url) as evm:
        yield evm


async def send_with_tips(anvil: AnvilChain, tips_gwei: list[int]) -> None:
    """One block per transaction (automine), each paying the given priority tip."""
    sender = await anvil.new_account()
    for tip in tips_gwei:
        await anvil.send(
            {
                "from": sender,
                "to": sender,
                "value": "0x1",
                "maxPriorityFeePerGas": hex(tip * GWEI),
                "maxFeePerGas": hex(200 * GWEI),
            }
        )


async def test_gas_price_is_the_nodes(anvil: AnvilChain, client: EvmClient) -> None:
    assert await client.gas_price() == int(await anvil.rpc("eth_gasPrice"), 16)


async def test_fee_history_decodes_the_nodes_answer(anvil: AnvilChain, client: EvmClient) -> None:
    await send_with_tips(anvil, [2, 3, 4])
    history = await client.fee_history(3, [10.0, 50.0, 90.0])
    raw = await anvil.rpc("eth_feeHistory", "0x3", "latest", [10.0, 50.0, 90.0])
    assert history.oldest_block == int(raw["oldestBlock"], 16) == await anvil.block_number() - 2
    assert history.base_fees == tuple(int(v, 16) for v in raw["baseFeePerGas"])
    assert len(history.base_fees) == 4  # three blocks and the next one
    # A block with one transaction: every percentile is that transaction's tip.
    assert history.rewards == tuple((t * GWEI,) * 3 for t in (2, 3, 4))
    assert history.next_base_fee == history.base_fees[-1] > 0


def book_for(rpc_url: str, model: dict[str, Any]) -> NetworkFeeInputBook:
    config = PricingConfig(fee_rpc_urls={"ethereum": rpc_url}, fee_inputs={"ethereum": model})
    return NetworkFeeInputBook.from_config(config, ["ethereum", "bsc", "tron"])


async def expected_eip1559(anvil: AnvilChain, gas: int) -> Eip1559Gas:
    raw = await anvil.rpc("eth_feeHistory", hex(FEE_HISTORY_BLOCKS), "latest", [50.0])
    tips = [int(block[0], 16) for block in raw["reward"]]
    return Eip1559Gas(gas, int(raw["baseFeePerGas"][-1], 16), median_low(tips))


async def test_eip1559_inputs_are_the_next_base_fee_and_the_median_tip(
    anvil: AnvilChain,
) -> None:
    await send_with_tips(anvil, [1, 5, 3, 7, 2, 9, 4, 8, 6, 10])  # ten blocks: median 5
    book = book_for(anvil.rpc_url, {"model": "eip1559", "gas": 52_000})
    try:
        observed = await book.cost("ethereum")
    finally:
        await book.close()
    assert observed.source == "node"
    assert observed.cost == await expected_eip1559(anvil, 52_000)
    assert isinstance(observed.cost, Eip1559Gas)
    assert observed.cost.priority_fee_wei == 5 * GWEI


async def test_legacy_inputs_are_the_gas_price(anvil: AnvilChain) -> None:
    book = book_for(anvil.rpc_url, {"model": "legacy", "gas": 60_000})
    try:
        observed = await book.cost("ethereum")
        static = await book.cost("bsc")  # no node configured there
    finally:
        await book.close()
    assert observed.cost == LegacyGas(60_000, int(await anvil.rpc("eth_gasPrice"), 16))
    assert static.source == "static"
    assert static.cost == LegacyGas(65_000, GWEI // 10)


async def test_a_node_that_does_not_answer_makes_the_fee_unavailable() -> None:
    book = book_for(closed_port_url(), {"model": "eip1559"})
    try:
        with pytest.raises(NetworkFeeUnavailable, match="ethereum cannot be estimated") as caught:
            await book.cost("ethereum")
    finally:
        await book.close()
    assert caught.value.code == "network_fee_unavailable"


# -- through the API, on the devnet registry ---------------------------------------------


@pytest.fixture
def fee_node_url(request: pytest.FixtureRequest, anvil: AnvilChain) -> str:
    return str(getattr(request, "param", anvil.rpc_url))


@pytest.fixture
def gateway_settings(
    gateway_settings_factory: SettingsFactory, anvil: AnvilChain, fee_node_url: str
) -> GatewaySettings:
    settings = gateway_settings_factory(assets_file=anvil.assets_file)
    settings.pricing = PricingConfig(
        rates_static=RATES,
        fee_rpc_urls={"ethereum": fee_node_url},
        fee_network_coefficients={"ethereum": "1.5"},
    )
    return settings


@pytest.fixture
async def close_pricing(gateway_ctx: GatewayContext) -> AsyncIterator[None]:
    """The context builds `pricing` on first use; its node client closes with the test."""
    yield
    if "pricing" in gateway_ctx.__dict__:
        await gateway_ctx.pricing.close()


@pytest.mark.usefixtures("close_pricing")
async def test_an_intents_network_fee_follows_the_nodes_gas_price(
    anvil: AnvilChain, api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    await send_with_tips(anvil, [3] * FEE_HISTORY_BLOCKS)
    response = await api.post(
        "/v1/payment_intents",
        json=intent_body(currency="USD", asset="USDT", fee_payer="customer"),
        headers=merchant.headers,
    )
    assert response.status_code == 200, response.text
    intent = response.json()
    cost = await expected_eip1559(anvil, 65_000)
    assert cost.priority_fee_wei == 3 * GWEI
    # gas x (base + tip) in ETH, x 3000 USDT per ETH, x the coefficient 1.5, rounded up
    exact = Fraction(cost.gas * (cost.base_fee_wei + cost.priority_fee_wei), 10**18)
    network_fee = -(-(exact * 3000 * Fraction(Decimal("1.5")) * 10**anvil.decimals) // 1)
    assert network_fee > 0
    assert intent["fees"]["network_fee"] == format_amount(network_fee, anvil.decimals)
    assert int(intent["amount_base_units"]) == 25 * 10**anvil.decimals + network_fee
    assert intent["token_contract"].lower() == anvil.usdt.lower()


@pytest.mark.parametrize("fee_node_url", [closed_port_url()], indirect=True)
@pytest.mark.usefixtures("close_pricing")
async def test_a_silent_node_is_a_503_and_nothing_is_written(
    api: httpx.AsyncClient, merchant: ApiMerchant, gateway_ctx: GatewayContext
) -> None:
    before = await written(gateway_ctx)
    response = await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "api_error",
        "network_fee_unavailable",
        None,
    )
    assert await written(gateway_ctx) == before
