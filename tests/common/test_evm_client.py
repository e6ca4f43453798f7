"""Contract tests of the EVM chain client: against anvil for what a node really returns,
and against a scripted JSON-RPC server on 127.0.0.1 for what providers answer when they
refuse (range limits, rate limits, outages) or misbehave."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from stablegate_common.chains import (
    BlockNotFound,
    ChainClient,
    ChainError,
    ChainUnavailable,
    RangeTooLarge,
    TokenTransfer,
)
from stablegate_common.chains.bloom import TransferBloom
from stablegate_common.chains.evm import TRANSFER_TOPIC, EvmClient
from tests.fixtures.anvil import AnvilChain, fresh_address

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def client(anvil: AnvilChain) -> AsyncIterator[EvmClient]:
    async with EvmClient(anvil.rpc_url, timeout_seconds=10) as evm:
        yield evm


async def _block_of(anvil: AnvilChain, tx_hash: str) -> int:
    return int((await anvil.receipt(tx_hash))["blockNumber"], 16)


# --- against anvil ------------------------------------------------------------------------


async def test_is_a_chain_client(client: EvmClient) -> None:
    protocol_view: ChainClient = client  # mypy checks the structural match
    assert await protocol_view.head() >= 0
    assert await client.chain_id() == 31337


async def test_head_follows_the_node(anvil: AnvilChain, client: EvmClient) -> None:
    before = await client.head()
    assert before == await anvil.block_number()
    await anvil.mine(3)
    assert await client.head() == before + 3


async def test_headers_form_a_hash_chain_in_the_order_asked(
    anvil: AnvilChain, small_batch_client: EvmClient
) -> None:
    await anvil.mine(7)
    head = await small_batch_client.head()
    numbers = list(range(head - 6, head + 1))
    headers = await small_batch_client.headers(numbers)  # max_batch=3: three batches
    assert [h.number for h in headers] == numbers
    for parent, child in itertools.pairwise(headers):
        assert child.parent_hash == parent.hash
        assert child.timestamp >= parent.timestamp
        assert child.timestamp.tzinfo is not None
    assert headers[-1].hash == await anvil.block_hash(head)

    shuffled = [numbers[4], numbers[0], numbers[6]]
    assert [h.number for h in await small_batch_client.headers(shuffled)] == shuffled
    assert await small_batch_client.headers([]) == []


@pytest_asyncio.fixture(loop_scope="session")
async def small_batch_client(anvil: AnvilChain) -> AsyncIterator[EvmClient]:
    async with EvmClient(anvil.rpc_url, max_batch=3) as evm:
        yield evm


async def test_header_above_head_is_block_not_found(client: EvmClient) -> None:
    head = await client.head()
    with pytest.raises(BlockNotFound) as caught:
        await client.headers([head, head + 1000])
    assert caught.value.number == head + 1000


async def test_transfers_come_only_from_the_given_contracts(
    anvil: AnvilChain, client: EvmClient
) -> None:
    to = fresh_address()
    payer = anvil.accounts[1]
    first = await anvil.block_number() + 1
    usdt_tx = await anvil.transfer(anvil.usdt, to, 5_000_000)
    usdc_tx = await anvil.transfer(anvil.usdc, to, 7_000_000)
    fake_tx = await anvil.fake_transfer(payer, to, 5_000_000)
    last = await anvil.block_number()

    found = await client.transfers(
        first, last, [anvil.usdt.upper().replace("0X", "0x"), anvil.usdc]
    )
    assert [(t.tx_hash, t.token_contract, t.amount_base_units) for t in found] == [
        (usdt_tx, anvil.usdt, 5_000_000),
        (usdc_tx, anvil.usdc, 7_000_000),
    ]
    assert fake_tx not in {t.tx_hash for t in found}
    usdt = found[0]
    assert (usdt.from_address, usdt.to_address) == (payer, to)
    assert usdt.block_number == await _block_of(anvil, usdt_tx)
    assert usdt.block_hash == await anvil.block_hash(usdt.block_number)
    assert usdt.log_index == 0

    only_usdc = await client.transfers(first, last, [anvil.usdc])
    assert [t.tx_hash for t in only_usdc] == [usdc_tx]
    # The look-alike's log is real and on chain: it is absent above only because of the filter.
    with_fake = await client.transfers(first, last, [anvil.lookalike])
    assert [(t.tx_hash, t.from_address, t.to_address) for t in with_fake] == [(fake_tx, payer, to)]


async def test_only_erc20_shaped_transfer_logs_are_decoded(
    anvil: AnvilChain, client: EvmClient
) -> None:
    to, payer = fresh_address(), anvil.accounts[2]
    first = await anvil.block_number() + 1
    good = await anvil.fake_transfer(payer, to, 1)
    await anvil.fake_nft_transfer(payer, to, 77)  # four topics
    await anvil.fake_malformed_transfer(payer, to, b"")  # no data
    await anvil.fake_malformed_transfer(payer, to, (5).to_bytes(32, "big") * 2)  # two words
    await anvil.fake_malformed_transfer(payer, to, (5).to_bytes(31, "big"))  # short word
    last = await anvil.block_number()

    raw = await anvil.rpc(
        "eth_getLogs",
        {"fromBlock": hex(first), "toBlock": hex(last), "address": anvil.lookalike},
    )
    assert len(raw) == 5
    assert all(log["topics"][0] == TRANSFER_TOPIC for log in raw)
    found = await client.transfers(first, last, [anvil.lookalike])
    assert [t.tx_hash for t in found] == [good]


async def test_amounts_beyond_64_bits_are_exact(anvil: AnvilChain, client: EvmClient) -> None:
    rich, to = await anvil.new_account(), fresh_address()
    amount = 2**64 + 123_456_789
    await anvil.mint(anvil.usdt, rich, 2**200)
    first = await anvil.block_number() + 1
    await anvil.transfer(anvil.usdt, to, amount, sender=rich)
    huge = 2**200 - amount - 1
    await anvil.transfer(anvil.usdt, to, huge, sender=rich)
    found = await client.transfers(first, await anvil.block_number(), [anvil.usdt])
    assert [t.amount_base_units for t in found] == [amount, huge]
    assert await client.token_balance(anvil.usdt, to) == amount + huge
    assert await client.token_balance(anvil.usdt, rich) == 1
    # Balances at an earlier block (the reconciler reads them at the confirmed depth).
    assert await client.token_balance(anvil.usdt, to, block=first) == amount
    assert await client.token_balance(anvil.usdt, to, block=first - 1) == 0


async def test_balances_in_one_batch_match_one_by_one_reads(
    anvil: AnvilChain, client: EvmClient
) -> None:
    rich, payees = await anvil.new_account(), [fresh_address() for _ in range(3)]
    await anvil.mint(anvil.usdt, rich, 10**12)
    first = await anvil.block_number() + 1
    for number, payee in enumerate(payees, start=1):
        await anvil.transfer(anvil.usdt, payee, number * 1_000_000, sender=rich)
    queries = [(anvil.usdt, p) for p in payees] + [(anvil.usdc, payees[0]), (anvil.usdt, rich)]

    now = await client.token_balances(queries)
    singles = [await client.token_balance(contract, holder) for contract, holder in queries]
    assert now == singles == [1_000_000, 2_000_000, 3_000_000, 0, 10**12 - 6_000_000]
    # At a block: only the first payment had happened.
    assert await client.token_balances(queries, block=first) == [
        1_000_000,
        0,
        0,
        0,
        10**12 - 1_000_000,
    ]
    assert await client.token_balances([]) == []
    with pytest.raises(ChainError, match="not a uint256"):
        await client.token_balances([(fresh_address(), payees[0])])  # no contract there


async def test_zero_value_transfer_is_reported(anvil: AnvilChain, client: EvmClient) -> None:
    """Address poisoning shows up as a real zero-value log; ignoring it is the engine's call."""
    victim, to = anvil.accounts[3], fresh_address()
    tx_hash = await anvil.zero_value_transfer_from(anvil.usdt, victim, to)
    block = await _block_of(anvil, tx_hash)
    found = await client.transfers(block, block, [anvil.usdt])
    assert [(t.tx_hash, t.from_address, t.to_address, t.amount_base_units) for t in found] == [
        (tx_hash, victim, to, 0)
    ]


async def test_ranges_without_logs_and_degenerate_queries(
    anvil: AnvilChain, client: EvmClient
) -> None:
    await anvil.mine(1)
    first = await anvil.block_number() + 1
    await anvil.mine(4)
    assert await client.transfers(first, first + 3, [anvil.usdt, anvil.usdc]) == []

    tx_hash = await anvil.transfer(anvil.usdt, fresh_address(), 1)
    block = await _block_of(anvil, tx_hash)
    assert len(await client.transfers(block, block, [anvil.usdt])) == 1
    # No contracts must not become "every contract"; an inverted range is empty.
    assert await client.transfers(block, block, []) == []
    assert await client.transfers(block, block - 1, [anvil.usdt]) == []


async def test_reorg_changes_the_block_hash_and_drops_the_log(
    anvil: AnvilChain, client: EvmClient
) -> None:
    to, other_payer = fresh_address(), await anvil.new_account()
    await anvil.mint(anvil.usdt, other_payer, 4_000_000)
    tx_hash = await anvil.transfer(anvil.usdt, to, 9_000_000)
    block = await _block_of(anvil, tx_hash)
    await anvil.mine(1)
    [before] = await client.headers([block])
    [seen] = await client.transfers(block, block, [anvil.usdt])
    assert seen.block_hash == before.hash

    replacement = anvil.call_request(
        other_payer, anvil.usdt, "transfer(address,uint256)", to, 4_000_000
    )
    await anvil.reorg(2, [(replacement, 1)])

    after = await client.headers([block - 1, block, block + 1])
    assert after[1].hash != before.hash
    assert after[1].parent_hash == after[0].hash  # the common ancestor is untouched
    assert await client.transfers(block, block, [anvil.usdt]) == []
    [moved] = await client.transfers(block, block + 1, [anvil.usdt])
    assert (moved.block_number, moved.block_hash) == (block + 1, after[2].hash)
    assert (moved.from_address, moved.amount_base_units) == (other_payer, 4_000_000)
    assert moved.tx_hash != tx_hash
    assert await client.token_balance(anvil.usdt, to) == 4_000_000  # the 9 USDT never happened


async def test_token_reads(anvil: AnvilChain, client: EvmClient) -> None:
    assert await client.token_decimals(anvil.usdt) == 6
    assert await client.token_decimals(anvil.usdc) == 6
    assert await client.token_balance(anvil.usdc, anvil.accounts[0]) == 1_000_000 * 10**6
    assert await client.token_balance(anvil.usdc, fresh_address()) == 0
    with pytest.raises(ChainError, match="not a uint256"):
        await client.token_decimals(fresh_address())  # no code there: eth_call returns "0x"


async def test_node_down_is_chain_unavailable() -> None:
    from devnet.devnet import free_port

    async with EvmClient(f"http://127.0.0.1:{free_port()}", timeout_seconds=2) as evm:
        with pytest.raises(ChainUnavailable) as caught:
            await evm.head()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


# --- against a scripted JSON-RPC server ---------------------------------------------------

Reply = tuple[int, Any]  # HTTP status, JSON body (or str for a raw body)
Script = Callable[[Any], Awaitable[Reply]]


class ScriptedNode:
    """An HTTP/1.1 JSON-RPC server on 127.0.0.1 answering each request with `script`."""

    def __init__(self) -> None:
        self.script: Script = self._unset
        self.requests: list[Any] = []
        self.release = asyncio.Event()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        self.release.set()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _unset(self, request: Any) -> Reply:
        raise AssertionError("no script")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            request = json.loads(await reader.readexactly(length))
            self.requests.append(request)
            status, body = await self.script(request)
            raw = (body if isinstance(body, str) else json.dumps(body)).encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(raw)}\r\nConnection: close\r\n\r\n".encode()
                + raw
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest_asyncio.fixture(loop_scope="session")
async def node() -> AsyncIterator[ScriptedNode]:
    server = ScriptedNode()
    await server.start()
    yield server
    await server.stop()


def rpc_error(code: int, message: str, data: Any = None) -> Script:
    async def reply(request: Any) -> Reply:
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        return 200, {"jsonrpc": "2.0", "id": request["id"], "error": error}

    return reply


def http_reply(status: int, body: Any) -> Script:
    async def reply(request: Any) -> Reply:
        return status, body

    return reply


INFURA = "query returned more than 10000 results. Try with this block range [0x1E8480, 0x1E8C3C]."
ALCHEMY = (
    "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block "
    "range and no limit on the response size, or you can request any block range with a cap "
    "of 10K logs in the response. Based on your parameters, this block range should work: "
    "[0x10, 0x2f]"
)


@pytest.mark.parametrize(
    ("script", "expected", "suggested", "max_range"),
    [
        (rpc_error(-32005, INFURA, {"from": "0x1E8480", "to": "0x1E8C3C", "limit": 10000}),
         RangeTooLarge, (2_000_000, 2_001_980), None),
        (rpc_error(-32005, "limit exceeded"), RangeTooLarge, None, None),
        (rpc_error(-32602, ALCHEMY), RangeTooLarge, (16, 47), None),
        (rpc_error(-32000, "exceed maximum block range: 5000"), RangeTooLarge, None, 5000),
        (rpc_error(-32602, "exceed max block range: 5000"), RangeTooLarge, None, 5000),
        (rpc_error(-32614, "eth_getLogs is limited to a 10,000 blocks range"),
         RangeTooLarge, None, 10_000),
        (rpc_error(-32602, "invalid argument 0: hex string without 0x prefix"),
         ChainError, None, None),
        (rpc_error(-32000, "exceed max addresses or topics per search position"),
         ChainError, None, None),
        (rpc_error(-32005, "daily request count exceeded, request rate limited"),
         ChainUnavailable, None, None),
        (rpc_error(429, "Your app has exceeded its compute units per second capacity"),
         ChainUnavailable, None, None),
        (rpc_error(429, "app over capacity"), ChainUnavailable, None, None),
        (http_reply(503, "<html>Service Unavailable</html>"), ChainUnavailable, None, None),
        (http_reply(429, {"error": "too many requests"}), ChainUnavailable, None, None),
        (http_reply(200, "<html>maintenance</html>"), ChainUnavailable, None, None),
        (http_reply(401, {"jsonrpc": "2.0", "id": 1, "error": {"code": -32001, "message": "?"}}),
         ChainError, None, None),
        (http_reply(404, "not found"), ChainError, None, None),
        (http_reply(200, {"jsonrpc": "2.0", "id": 1}), ChainError, None, None),
    ],
    ids=[
        "infura-too-many-results", "bare-limit-exceeded", "alchemy-response-size",
        "geth-block-range", "java-tron-block-range", "quicknode-block-range",
        "invalid-params", "geth-too-many-addresses", "infura-rate-limited",
        "alchemy-compute-units", "code-429", "http-503", "http-429", "html-200",
        "http-401-rpc-error", "http-404", "no-result",
    ],
)  # fmt: skip
async def test_provider_refusals_are_translated(
    node: ScriptedNode,
    script: Script,
    expected: type[ChainError],
    suggested: tuple[int, int] | None,
    max_range: int | None,
) -> None:
    node.script = script
    async with EvmClient(node.url) as evm:
        with pytest.raises(ChainError) as caught:
            await evm.transfers(0, 10**6, ["0x" + "11" * 20])
    assert type(caught.value) is expected, caught.value
    if isinstance(caught.value, RangeTooLarge):
        assert caught.value.suggested_range == suggested
        assert caught.value.max_block_range == max_range
        assert caught.value.rpc_code is not None


async def test_a_silent_node_times_out_as_unavailable(node: ScriptedNode) -> None:
    async def hang(request: Any) -> Reply:
        await node.release.wait()
        return 200, {}

    node.script = hang
    async with EvmClient(node.url, timeout_seconds=0.2) as evm:
        with pytest.raises(ChainUnavailable) as caught:
            await evm.head()
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


def _block(number: int) -> dict[str, Any]:
    return {
        "number": hex(number),
        "hash": "0x" + f"{number:064x}",
        "parentHash": "0x" + f"{number - 1:064x}",
        "timestamp": hex(1_700_000_000 + number),
    }


async def test_batch_answers_in_any_order_are_matched_by_id(node: ScriptedNode) -> None:
    async def reversed_batch(batch: Any) -> Reply:
        answers = [
            {"jsonrpc": "2.0", "id": call["id"], "result": _block(int(call["params"][0], 16))}
            for call in batch
        ]
        return 200, answers[::-1]

    node.script = reversed_batch
    async with EvmClient(node.url) as evm:
        headers = await evm.headers([5, 3, 9])
    assert [(h.number, h.hash[-2:], h.parent_hash[-2:]) for h in headers] == [
        (5, "05", "04"),
        (3, "03", "02"),
        (9, "09", "08"),
    ]
    assert headers[0].timestamp.timestamp() == 1_700_000_005


async def test_a_header_for_another_height_is_refused(node: ScriptedNode) -> None:
    async def off_by_two(batch: Any) -> Reply:
        return 200, [{"jsonrpc": "2.0", "id": c["id"], "result": _block(7)} for c in batch]

    node.script = off_by_two
    async with EvmClient(node.url) as evm:
        with pytest.raises(ChainError, match="asked for block 5"):
            await evm.headers([5])


async def test_one_failed_call_in_a_batch_fails_the_batch(node: ScriptedNode) -> None:
    async def partly_failing(batch: Any) -> Reply:
        answers: list[dict[str, Any]] = [
            {"jsonrpc": "2.0", "id": call["id"], "result": _block(int(call["params"][0], 16))}
            for call in batch
        ]
        answers[1] = {
            "jsonrpc": "2.0",
            "id": batch[1]["id"],
            "error": {"code": -32000, "message": "boom"},
        }
        return 200, answers

    node.script = partly_failing
    async with EvmClient(node.url) as evm:
        with pytest.raises(ChainError, match="boom"):
            await evm.headers([1, 2, 3])


PARTY = "0x" + "00" * 12 + "22" * 20


def _log(**overrides: Any) -> dict[str, Any]:
    log = {
        "address": "0x" + "11" * 20,
        "topics": [TRANSFER_TOPIC, "0x" + "00" * 12 + "22" * 20, "0x" + "00" * 12 + "33" * 20],
        "data": "0x" + f"{42:064x}",
        "blockNumber": "0x10",
        "blockHash": "0x" + "ab" * 32,
        "transactionHash": "0x" + "cd" * 32,
        "logIndex": "0x0",
        "removed": False,
    }
    log.update(overrides)
    return log


async def test_node_metadata_must_be_valid_but_contract_data_may_be_junk(
    node: ScriptedNode,
) -> None:
    contract = "0x" + "11" * 20
    logs = [
        _log(),
        _log(address="0x" + "99" * 20),  # a contract we did not ask for (a lying provider)
        _log(topics=[TRANSFER_TOPIC, "0x" + "ff" * 32, "0x" + "00" * 12 + "33" * 20]),
        _log(removed=True),
        # Shapes a node can return for the Transfer topic that are not ERC-20 transfers,
        # each with an otherwise valid data word so only the topics can reject them.
        _log(topics=[TRANSFER_TOPIC, PARTY]),
        _log(topics=[TRANSFER_TOPIC, PARTY, PARTY, "0x" + "00" * 31 + "07"]),  # ERC-721
        _log(topics=["0x" + "8c" * 32, PARTY, PARTY]),  # another event
    ]
    node.script = http_reply(200, {"jsonrpc": "2.0", "id": 1, "result": logs})
    async with EvmClient(node.url) as evm:
        found = await evm.transfers(16, 16, [contract])
        assert found == [
            TokenTransfer(
                token_contract=contract,
                tx_hash="0x" + "cd" * 32,
                log_index=0,
                block_number=16,
                block_hash="0x" + "ab" * 32,
                from_address="0x" + "22" * 20,
                to_address="0x" + "33" * 20,
                amount_base_units=42,
            )
        ]
        # A pending log (no block hash) from a broken node fails loudly, never silently.
        node.script = http_reply(200, {"jsonrpc": "2.0", "id": 1, "result": [_log(blockHash=None)]})
        with pytest.raises(ChainError, match="blockHash"):
            await evm.transfers(16, 16, [contract])
        # No contracts must not become an eth_getLogs without an address filter.
        asked = len(node.requests)
        assert await evm.transfers(16, 16, []) == []
        assert len(node.requests) == asked
    assert node.requests[0]["params"][0]["address"] == [contract]
    assert node.requests[0]["params"][0]["topics"] == [TRANSFER_TOPIC]


# --- completeness of log answers (issue 13, item 2) ------------------------------------

APPROVAL_TOPIC = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"


async def test_headers_carry_a_logs_bloom_that_shows_the_token_transfer(
    anvil: AnvilChain, client: EvmClient
) -> None:
    tx_hash = await anvil.transfer(anvil.usdt, fresh_address(), 1)
    block = await _block_of(anvil, tx_hash)
    await anvil.mine(1)
    with_transfer, empty = await client.headers([block, block + 1])
    raw = await anvil.rpc("eth_getBlockByNumber", hex(block), False)
    assert with_transfer.logs_bloom is not None
    assert empty.logs_bloom is not None
    assert "0x" + with_transfer.logs_bloom.hex() == raw["logsBloom"].lower()

    assert TransferBloom([anvil.usdc, anvil.usdt]).may_contain(with_transfer.logs_bloom)
    assert not TransferBloom([anvil.lookalike]).may_contain(with_transfer.logs_bloom)
    assert not TransferBloom([anvil.usdt], APPROVAL_TOPIC).may_contain(with_transfer.logs_bloom)
    assert not TransferBloom([anvil.usdt]).may_contain(empty.logs_bloom)


async def test_transfer_logs_name_every_block_that_logged_recipients_aside(
    anvil: AnvilChain, client: EvmClient
) -> None:
    tx_hash = await anvil.transfer(anvil.usdt, fresh_address(), 2)
    block = await _block_of(anvil, tx_hash)
    logs = await client.transfer_logs(block, block, [anvil.usdt], {fresh_address()})
    assert logs.transfers == []
    assert logs.blocks == {block: await anvil.block_hash(block)}


async def test_block_transfers_reads_a_block_by_hash_and_refuses_an_unknown_one(
    anvil: AnvilChain, client: EvmClient
) -> None:
    deposit = fresh_address()
    tx_hash = await anvil.transfer(anvil.usdc, deposit, 3)
    block = await _block_of(anvil, tx_hash)
    found = await client.block_transfers(
        [await anvil.block_hash(block)], [anvil.usdt, anvil.usdc], {deposit}
    )
    assert [(t.tx_hash, t.block_number, t.amount_base_units) for t in found] == [
        (tx_hash, block, 3)
    ]
    # EIP-234: a node without the block answers an error, never [] (the check relies on it).
    with pytest.raises(ChainError, match="unknown block"):
        await client.block_transfers(["0x" + "ab" * 32], [anvil.usdt], None)


@pytest.mark.parametrize(
    ("bloom", "expected"),
    [
        ("absent", None),  # the completeness check is off for that header
        ("0x" + "00" * 255 + "01", b"\x00" * 255 + b"\x01"),
        ("0x" + "00" * 255, ChainError),  # short
        ("0x" + "zz" * 256, ChainError),
        (7, ChainError),
    ],
)
async def test_a_header_logs_bloom_is_256_bytes_or_refused(
    node: ScriptedNode, bloom: object, expected: bytes | type[ChainError] | None
) -> None:
    async def with_bloom(batch: Any) -> Reply:
        block = _block(int(batch[0]["params"][0], 16))
        if bloom != "absent":
            block["logsBloom"] = bloom
        return 200, [{"jsonrpc": "2.0", "id": batch[0]["id"], "result": block}]

    node.script = with_bloom
    async with EvmClient(node.url) as evm:
        if expected is ChainError:
            with pytest.raises(ChainError, match="logsBloom"):
                await evm.headers([5])
        else:
            [header] = await evm.headers([5])
            assert header.logs_bloom == expected
