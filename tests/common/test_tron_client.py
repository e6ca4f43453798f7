"""Contract tests of the Tron chain client against the Tron devnet (devnet/tron): what the
java-tron HTTP API returns for heads, blocks, receipts and constant calls, TRC-20
transfers signed and broadcast through tronpy, and the node's failures (error bodies,
rate limiting, 503, dropped connections, a lite fullnode, an outage) as chain exceptions.
Decoding against recorded real-node answers is in test_tron_decode.py."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from devnet.tron import TronDevnet
from stablegate_common.chains import (
    BlockNotFound,
    ChainClient,
    ChainError,
    ChainUnavailable,
    FinalizedHeadSource,
)
from stablegate_common.chains.tron import TronClient
from tests.fixtures.tron import fresh_tron_account
from tests.fixtures.tron_payments import block_of, funded_payer, pay_trc20

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def client(tron_devnet: TronDevnet) -> AsyncIterator[TronClient]:
    async with TronClient(tron_devnet.url, timeout_seconds=5) as tron:
        yield tron


@pytest.fixture
def paused(tron_devnet: TronDevnet) -> Iterator[TronDevnet]:
    """The devnet with its block timer stopped: blocks come only from `mine()`."""
    tron_devnet.pause()
    try:
        yield tron_devnet
    finally:
        tron_devnet.resume()


def _grow_to(devnet: TronDevnet, height: int) -> int:
    """Mine until the chain is at least `height` blocks high; return the head."""
    if devnet.head() < height:
        devnet.mine(height - devnet.head())
    return devnet.head()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- heads and blocks ----------------------------------------------------------------------


async def test_head_and_finality_follow_the_node(paused: TronDevnet, client: TronClient) -> None:
    as_client: ChainClient = client  # mypy checks the structural match
    assert isinstance(client, FinalizedHeadSource)
    head = await as_client.head()
    assert head == paused.head()
    assert await client.finalized_head() == paused.solid() == head - 19
    paused.mine(2)
    assert await client.head() == head + 2
    assert await client.finalized_head() == head + 2 - 19


async def test_headers_are_the_nodes_blocks_in_the_order_asked(
    paused: TronDevnet, client: TronClient
) -> None:
    head = _grow_to(paused, 130)
    wanted = [head, head - 2, head - 1, 1, head - 60]
    headers = await client.headers(wanted)
    assert [h.number for h in headers] == wanted
    assert [h.hash for h in headers] == [paused.block_id(n) for n in wanted]
    by_number = {h.number: h for h in headers}
    assert by_number[head].parent_hash == by_number[head - 1].hash
    assert by_number[head - 1].parent_hash == paused.block_id(head - 2)
    assert by_number[head].timestamp >= by_number[head - 1].timestamp
    # More than one getblockbylimitnext call's worth (java-tron caps a call at 100 blocks).
    run = await client.headers(range(head - 120, head + 1))
    assert [h.hash for h in run] == [paused.block_id(n) for n in range(head - 120, head + 1)]


async def test_a_block_above_the_head_is_not_found(paused: TronDevnet, client: TronClient) -> None:
    head = paused.head()
    with pytest.raises(BlockNotFound) as raised:
        await client.headers([head - 1, head + 1, head + 2])
    assert raised.value.number == head + 1
    assert await client.transfers(head + 1, head, [paused.tokens["USDT"]]) == []


# -- transfers -----------------------------------------------------------------------------


async def test_a_trc20_transfer_signed_with_tronpy_is_reported_in_base58(
    tron_devnet: TronDevnet, client: TronClient
) -> None:
    usdt = tron_devnet.tokens["USDT"]
    payer = funded_payer(tron_devnet, usdt=40_000_000)
    deposit = fresh_tron_account().address
    txid = await pay_trc20(tron_devnet, payer, deposit, 12_500_000)
    tron_devnet.mine()
    block = block_of(tron_devnet, txid)

    found = await client.transfers(block, block, [usdt, tron_devnet.tokens["USDC"]])

    [transfer] = [t for t in found if t.tx_hash == txid]
    assert transfer.token_contract == usdt
    assert transfer.from_address == payer.address
    assert transfer.to_address == deposit
    assert transfer.amount_base_units == 12_500_000
    assert transfer.block_number == block
    assert transfer.block_hash == tron_devnet.block_id(block)
    assert await client.token_balance(usdt, deposit) == 12_500_000


async def test_failed_and_look_alike_transfers_are_not_reported(
    paused: TronDevnet, client: TronClient
) -> None:
    tokens = paused.tokens
    deposit = fresh_tron_account().address
    # A reverted call whose receipt still lists the Transfer log: only the receipt tells.
    reverted = paused.transfer(0, deposit, 1_000_000, fail="REVERT", keep_logs=True, mine=False)
    starved = paused.transfer(0, deposit, 2_000_000, fail="OUT_OF_ENERGY", mine=False)
    fake = paused.transfer(0, deposit, 3_000_000, token="LOOKALIKE", mine=False)
    real = paused.transfer(0, deposit, 4_000_000, mine=False)
    [block] = paused.mine()
    assert {block_of(paused, s.txid) for s in (reverted, starved, fake, real)} == {block}

    found = await client.transfers(block, block, [tokens["USDT"], tokens["USDC"]])

    assert [(t.tx_hash, t.amount_base_units) for t in found] == [(real.txid, 4_000_000)]
    # A contract that is not asked for is never reported, even when it is a real token.
    assert await client.transfers(block, block, [tokens["USDC"]]) == []


async def test_log_indexes_follow_the_block_and_are_stable(
    paused: TronDevnet, client: TronClient
) -> None:
    usdt = paused.tokens["USDT"]
    deposits = [fresh_tron_account().address for _ in range(3)]
    sent = [paused.transfer(0, to, 1_000 + i, mine=False) for i, to in enumerate(deposits)]
    first = paused.transfer(0, deposits[0], 5, fail="REVERT", keep_logs=True, mine=False)
    [block] = paused.mine()

    found = await client.transfers(block, block, [usdt])
    in_a_wider_window = await client.transfers(block - 1, block, [usdt])

    assert [t for t in in_a_wider_window if t.block_number == block] == found
    assert [t.tx_hash for t in found] == [s.txid for s in sent]
    assert [t.to_address for t in found] == deposits
    keys = [(t.tx_hash, t.log_index) for t in found]
    assert len(set(keys)) == 3
    # The reverted transaction's log is counted in the positions even though it is skipped.
    assert first.txid not in {t.tx_hash for t in found}
    assert [t.log_index for t in found] == sorted(t.log_index for t in found)


# -- token reads and prices ------------------------------------------------------------------


async def test_balances_now_and_at_the_solidified_state(
    paused: TronDevnet, client: TronClient
) -> None:
    usdt = paused.tokens["USDT"]
    deposit = fresh_tron_account().address
    paused.transfer(0, deposit, 7_000_000)
    head = paused.head()
    assert await client.token_balance(usdt, deposit) == 7_000_000
    # A past block reads the solidified state, which does not hold the transfer yet.
    assert await client.token_balance(usdt, deposit, block=head - 19) == 0
    paused.mine(19)
    assert await client.token_balance(usdt, deposit, block=head) == 7_000_000


async def test_decimals_and_resource_prices(tron_devnet: TronDevnet, client: TronClient) -> None:
    tokens = tron_devnet.tokens
    assert await client.token_decimals(tokens["USDT"]) == 6
    assert await client.token_decimals(tokens["USDC"]) == 6
    assert await client.energy_price() == 100  # sun per energy since 2025-08 (chains.md §3.3)
    assert await client.bandwidth_price() == 1000


async def test_a_token_read_of_an_address_without_a_contract_fails(
    tron_devnet: TronDevnet, client: TronClient
) -> None:
    with pytest.raises(ChainError, match="CONTRACT_VALIDATE_ERROR") as raised:
        await client.token_decimals(fresh_tron_account().address)
    assert not isinstance(raised.value, ChainUnavailable)


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "kind", "message"),
    [
        ("error", ChainError, "devnet fault"),
        ("busy", ChainUnavailable, "lack of computing resources"),
        ("503", ChainUnavailable, "HTTP 503"),
        ("close", ChainUnavailable, "unreachable"),
        ("lite", ChainError, "lite fullnode"),
    ],
)
async def test_node_failures_become_chain_exceptions(
    tron_devnet: TronDevnet, client: TronClient, mode: str, kind: type[ChainError], message: str
) -> None:
    tron_devnet.fail_next("wallet/getnowblock", mode)
    with pytest.raises(kind, match=message) as raised:
        await client.head()
    assert type(raised.value) is kind
    assert raised.value.__cause__ is not None or mode in ("error", "busy")
    assert await client.head() >= 0  # one failure only


async def test_a_hanging_node_times_out(tron_devnet: TronDevnet) -> None:
    tron_devnet.fail_next("wallet/gettransactioninfobyblocknum", "hang", seconds=1.5)
    paused_block = tron_devnet.transfer(0, fresh_tron_account().address, 1).block
    assert paused_block is not None
    async with TronClient(tron_devnet.url, timeout_seconds=0.5) as impatient:
        with pytest.raises(ChainUnavailable, match="timed out"):
            await impatient.transfers(paused_block, paused_block, [tron_devnet.tokens["USDT"]])


async def test_an_outage_and_the_return(tron_devnet: TronDevnet, client: TronClient) -> None:
    tron_devnet.down("503")
    try:
        with pytest.raises(ChainUnavailable):
            await client.head()
        with pytest.raises(ChainUnavailable):
            await client.finalized_head()
    finally:
        tron_devnet.up()
    assert await client.head() >= 0


async def test_unreachable_and_misconfigured_nodes() -> None:
    async with TronClient(f"http://127.0.0.1:{_closed_port()}", timeout_seconds=2) as gone:
        with pytest.raises(ChainUnavailable, match="unreachable"):
            await gone.head()
    async with TronClient("ftp://127.0.0.1:1") as wrong:
        with pytest.raises(ChainError, match="bad node URL") as raised:
            await wrong.head()
        assert not isinstance(raised.value, ChainUnavailable)


async def test_finality_is_read_from_the_solidity_endpoint(tron_devnet: TronDevnet) -> None:
    solidity = f"http://127.0.0.1:{_closed_port()}"
    async with TronClient(tron_devnet.url, solidity_url=solidity, timeout_seconds=2) as split:
        assert await split.head() >= 0
        with pytest.raises(ChainUnavailable, match=solidity):
            await split.finalized_head()
        with pytest.raises(ChainUnavailable, match=solidity):
            await split.token_balance(tron_devnet.tokens["USDT"], fresh_tron_account().address, 1)
