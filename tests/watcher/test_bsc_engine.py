"""The watcher engine on the BSC devnet (second anvil, chain id 31338, 18-decimal tokens):
start-up checks, exact 18-decimal amounts, the legacy gas price, and the watcher's side of
wrong-network payments (both EVM watchers watch one pool and each reports its own chain)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from stablegate_common.chains.evm import EvmClient
from stablegate_common.core.assets import Network
from stablegate_common.db import Database
from stablegate_common.events import parse_payload
from stablegate_common.events.contracts import TransferConfirmed, TransferDetected
from stablegate_common.watcher import (
    ChainIdMismatch,
    ScannerLoop,
    TokenDecimalsMismatch,
    WatcherEngine,
    WatcherNotReady,
    WatchSetConsumer,
)
from stablegate_watcher_eth.app import MIGRATIONS as ETH_MIGRATIONS
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.watcher import (
    CONFIRMATIONS,
    announce,
    intent_created,
    queued_events,
    scan_to_head,
    transfer_rows,
    with_decimals,
)
from tests.watcher.bsc_support import bsc_engine, engine_config, network_of, watcher_schema

pytestmark = pytest.mark.asyncio(loop_scope="session")

WEI = 10**18


@pytest_asyncio.fixture(loop_scope="session")
async def bsc_client(anvil_bsc: AnvilChain) -> AsyncIterator[EvmClient]:
    async with EvmClient(anvil_bsc.rpc_url, timeout_seconds=5, poa=True) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def bsc_db() -> AsyncIterator[Database]:
    async with watcher_schema() as db:
        yield db


@pytest.fixture
def bsc(anvil_bsc: AnvilChain) -> Network:
    return network_of(anvil_bsc, "bsc")


async def _engine(
    chain: AnvilChain, db: Database, client: EvmClient, network: Network
) -> WatcherEngine:
    engine = bsc_engine(db, client, network, start_block=await chain.block_number() + 1)
    await engine.resume()
    return engine


# --- the devnet and start-up checks ------------------------------------------------------


async def test_bsc_devnet_has_its_own_chain_id_and_18_decimal_tokens(
    anvil: AnvilChain, anvil_bsc: AnvilChain, bsc_client: EvmClient, bsc: Network
) -> None:
    assert await bsc_client.chain_id() == 31338 == bsc.chain_id
    assert (bsc.family, bsc.native_symbol) == ("evm", "BNB")
    for asset in bsc.assets:
        assert asset.decimals == 18
        assert await bsc_client.token_decimals(asset.contract) == 18
    # Each chain has token addresses of its own, as on mainnet.
    assert {anvil_bsc.usdt, anvil_bsc.usdc}.isdisjoint({anvil.usdt, anvil.usdc})
    assert await anvil_bsc.balance_of(anvil_bsc.usdt, anvil_bsc.accounts[0]) == 1_000_000 * WEI


async def test_a_registry_claiming_6_decimals_refuses_to_start(
    bsc_db: Database, bsc_client: EvmClient, bsc: Network, anvil_bsc: AnvilChain
) -> None:
    wrong = with_decimals(bsc, "USDT", 6)
    engine = bsc_engine(bsc_db, bsc_client, wrong, start_block=0)
    with pytest.raises(TokenDecimalsMismatch, match=r"bsc USDT .*returns 18.*registry says 6"):
        await engine.verify_chain()
    loop = ScannerLoop(engine)
    with pytest.raises(TokenDecimalsMismatch):
        await asyncio.wait_for(loop.run(asyncio.Event()), 10)
    with pytest.raises(WatcherNotReady, match="start-up"):
        await loop.check_ready()
    # The registry as the devnet wrote it passes.
    await bsc_engine(bsc_db, bsc_client, bsc, start_block=0).verify_chain()


async def test_the_ethereum_node_behind_a_bsc_watcher_refuses_to_start(
    anvil: AnvilChain, bsc_db: Database, bsc: Network
) -> None:
    async with EvmClient(anvil.rpc_url, timeout_seconds=5, poa=True) as wrong_node:
        engine = bsc_engine(bsc_db, wrong_node, bsc, start_block=0)
        with pytest.raises(ChainIdMismatch, match=r"bsc: the node serves chain id 31337.*31338"):
            await engine.verify_chain()


async def test_gas_price_is_the_nodes_legacy_price_in_wei(
    anvil_bsc: AnvilChain, bsc_client: EvmClient
) -> None:
    expected = int(await anvil_bsc.rpc("eth_gasPrice"), 16)
    price = await bsc_client.gas_price()
    assert isinstance(price, int)
    assert price == expected > 0


# --- detection ---------------------------------------------------------------------------


async def test_an_18_decimal_transfer_is_reported_on_bsc_to_the_last_base_unit(
    anvil_bsc: AnvilChain, bsc_db: Database, bsc_client: EvmClient, bsc: Network
) -> None:
    engine = await _engine(anvil_bsc, bsc_db, bsc_client, bsc)
    deposit = fresh_address()
    await announce(bsc_db, bsc, [deposit])
    # One base unit above 25.00: a float anywhere on the way would lose it.
    amount = 25 * WEI + 1
    tx_hash = await anvil_bsc.transfer(anvil_bsc.usdt, deposit, amount)
    await scan_to_head(engine)

    [detected] = await queued_events(bsc_db, "transfer.detected")
    assert detected.subject == f"bsc:{tx_hash}:0"
    assert detected.producer == "chain-watcher-bsc"
    assert detected.data["amount_base_units"] == "25000000000000000001"
    payload = parse_payload(detected, TransferDetected)
    assert (payload.network, payload.chain_id) == ("bsc", 31338)
    assert payload.token_contract == anvil_bsc.usdt
    assert payload.amount_base_units == amount

    await anvil_bsc.mine(CONFIRMATIONS - 1)
    await scan_to_head(engine)
    [confirmed] = await queued_events(bsc_db, "transfer.confirmed")
    assert parse_payload(confirmed, TransferConfirmed).amount_base_units == amount


# --- wrong network: the watcher's side ---------------------------------------------------


async def test_both_evm_watchers_watch_one_pool_and_each_reports_its_own_chain(
    anvil: AnvilChain,
    anvil_bsc: AnvilChain,
    bsc_db: Database,
    bsc_client: EvmClient,
    bsc: Network,
) -> None:
    ethereum = network_of(anvil, "ethereum")
    async with (
        watcher_schema(ETH_MIGRATIONS) as eth_db,
        EvmClient(anvil.rpc_url, timeout_seconds=5) as eth_client,
    ):
        eth = WatcherEngine(
            eth_db,
            eth_client,
            ethereum,
            engine_config(start_block=await anvil.block_number() + 1),
            producer="chain-watcher-eth",
        )
        await eth.resume()
        bsc_watcher = await _engine(anvil_bsc, bsc_db, bsc_client, bsc)
        # One `address.provisioned` of the shared evm pool reaches both watch sets.
        paid_on_bsc, paid_on_eth = fresh_address(), fresh_address()
        for db, network in ((eth_db, ethereum), (bsc_db, bsc)):
            await announce(db, network, [paid_on_bsc, paid_on_eth])

        bsc_tx = await anvil_bsc.transfer(anvil_bsc.usdt, paid_on_bsc, 7 * WEI)
        eth_tx = await anvil.transfer(anvil.usdt, paid_on_eth, 7_000_000)
        await scan_to_head(eth)
        await scan_to_head(bsc_watcher)

        bsc_events = await queued_events(bsc_db, "transfer.detected")
        [on_bsc] = [parse_payload(e, TransferDetected) for e in bsc_events]
        assert (on_bsc.network, on_bsc.tx_hash, on_bsc.to_address) == ("bsc", bsc_tx, paid_on_bsc)
        assert (on_bsc.token_contract, on_bsc.amount_base_units) == (anvil_bsc.usdt, 7 * WEI)
        eth_events = await queued_events(eth_db, "transfer.detected")
        [on_eth] = [parse_payload(e, TransferDetected) for e in eth_events]
        assert (on_eth.network, on_eth.tx_hash, on_eth.to_address) == (
            "ethereum",
            eth_tx,
            paid_on_eth,
        )
        assert on_eth.amount_base_units == 7_000_000
        assert [r.tx_hash for r in await transfer_rows(eth_db)] == [eth_tx]


async def test_a_bsc_watcher_watches_the_deposit_address_of_an_ethereum_intent(
    anvil_bsc: AnvilChain, bsc_db: Database, bsc_client: EvmClient, bsc: Network
) -> None:
    """Even when the pool's `address.provisioned` never reached this watcher (its queue did
    not exist yet), the intent's own announcement does; BSC transfers to it are reported."""
    engine = await _engine(anvil_bsc, bsc_db, bsc_client, bsc)
    family = WatchSetConsumer(bsc, ["ethereum", "bsc"])
    own_only = WatchSetConsumer(bsc)
    ethereum_intent, ignored = fresh_address(), fresh_address()
    async with bsc_db.transaction() as session:
        await own_only.handle(session, intent_created(ignored, network="ethereum"))
        await family.handle(session, intent_created(ethereum_intent, network="ethereum"))

    tx_hash = await anvil_bsc.transfer(anvil_bsc.usdt, ethereum_intent, 3 * WEI)
    await anvil_bsc.transfer(anvil_bsc.usdt, ignored, 3 * WEI)
    await scan_to_head(engine)
    [detected] = await queued_events(bsc_db, "transfer.detected")
    payload = parse_payload(detected, TransferDetected)
    assert (payload.network, payload.tx_hash, payload.to_address) == (
        "bsc",
        tx_hash,
        ethereum_intent,
    )
