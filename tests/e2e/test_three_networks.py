"""One merchant with intents on Ethereum, BSC and Tron at once, all paid: the balances
are right per network and asset, and 6-decimal and 18-decimal USDT are never confused.

Every service runs as its own process, with the three watchers, on the session's two
anvils and the Tron devnet.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from devnet.tron import TronDevnet
from tests.e2e.conftest import BSC_RPC_TIMEOUT_SECONDS, RunningSuite, _suite
from tests.e2e.test_ethereum_payment import create_intent, get_intent, wait_for
from tests.fixtures.anvil import AnvilChain

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def everywhere(
    anvil: AnvilChain, anvil_bsc: AnvilChain, tron_devnet: TronDevnet
) -> AsyncIterator[RunningSuite]:
    env = {"watcher-bsc": {"WATCHER_RPC_TIMEOUT_SECONDS": BSC_RPC_TIMEOUT_SECONDS}}
    async with _suite(
        anvil, "test_three_networks", bsc=anvil_bsc, tron=tron_devnet, service_env=env
    ) as running:
        yield running


async def test_one_merchant_paid_on_three_networks_has_three_balances(
    everywhere: RunningSuite, anvil: AnvilChain, anvil_bsc: AnvilChain, tron_devnet: TronDevnet
) -> None:
    eth = await create_intent(everywhere, amount="25.00", network="ethereum")
    bsc = await create_intent(everywhere, amount="25.00", network="bsc")
    tron = await create_intent(everywhere, amount="25.00", network="tron")
    assert (eth["amount_base_units"], bsc["amount_base_units"], tron["amount_base_units"]) == (
        "25000000",
        "25000000000000000000",
        "25000000",
    )
    assert tron["deposit_address"].startswith("T")

    await anvil.transfer(anvil.usdt, eth["deposit_address"], 25_000_000)
    await anvil_bsc.transfer(anvil_bsc.usdt, bsc["deposit_address"], 25 * 10**18)
    tron_devnet.transfer(0, tron["deposit_address"], 25_000_000)
    await anvil.mine(eth["confirmations_required"] - 1)
    await anvil_bsc.mine(bsc["confirmations_required"] - 1)
    tron_devnet.mine(tron["confirmations_required"])

    for intent in (eth, bsc, tron):

        async def paid(intent_id: str = intent["id"]) -> bool:
            return (await get_intent(everywhere, intent_id))["status"] == "paid"

        await wait_for(paid, timeout=60, what=f"{intent['network']} intent paid")

    async def three_balances() -> dict[str, Any] | None:
        async with everywhere.api() as api:
            data = (await api.get("/v1/balances")).json()["data"]
        found = {b["network"]: b for b in data if b["asset"] == "USDT"}
        return found if len(found) == 3 else None

    balances = await wait_for(three_balances, timeout=60, what="three USDT balances")
    assert {
        n: (b["amount"], b["amount_base_units"], b["decimals"]) for n, b in balances.items()
    } == {
        "ethereum": ("25.00", "25000000", 6),
        "bsc": ("25.00", "25000000000000000000", 18),
        "tron": ("25.00", "25000000", 6),
    }
    await asyncio.sleep(1)
    for intent in (eth, bsc, tron):
        rows = await everywhere.query(
            "reconciler",
            "SELECT count(*) AS n FROM journal_entries WHERE intent_id = $1",
            intent["id"],
        )
        assert rows[0]["n"] == 1
