"""The EVM client's recipient filter (`transfers_to`, `decode_transfers(…, recipients)`):
it must return exactly the transfers `transfers` returns to those recipients, whatever the
logs look like, and the watcher engine must use it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Container, Sequence
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from stablegate_common.chains import RecipientFilter, TransferLogs
from stablegate_common.chains.evm import TRANSFER_TOPIC, EvmClient, decode_transfers
from stablegate_common.db import Database
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.watcher import EngineFactory, announce, scan_to_head

TOKEN = "0x" + "aa" * 20
OTHER_TOKEN = "0x" + "bb" * 20
PEOPLE = ["0x" + f"{i:x}e" * 20 for i in range(10, 15)]  # hex letters: case matters


def _topic(address: str, *, padding: str = "0" * 24, upper: bool = False) -> str:
    text = "0x" + padding + address.removeprefix("0x")
    return text.upper().replace("0X", "0x") if upper else text


topics = st.one_of(
    st.sampled_from(PEOPLE).map(_topic),
    st.sampled_from(PEOPLE).map(lambda a: _topic(a, upper=True)),
    st.sampled_from(PEOPLE).map(lambda a: _topic(a, padding="0" * 23 + "1")),  # not an address
    st.just("0x1234"),
)


@st.composite
def logs(draw: st.DrawFn) -> dict[str, Any]:
    # Mostly well-formed transfers, so the malformed variants meet every recipient case.
    count = draw(st.sampled_from([3, 3, 3, 3, 2, 4]))
    first = draw(
        st.sampled_from([TRANSFER_TOPIC, TRANSFER_TOPIC, TRANSFER_TOPIC, "0x" + "cd" * 32])
    )
    return {
        "address": draw(st.sampled_from([TOKEN, TOKEN.upper().replace("0X", "0x"), OTHER_TOKEN])),
        "topics": [first, *(draw(topics) for _ in range(count - 1))],
        "data": draw(st.sampled_from(["0x" + "00" * 31 + "07", "0x", "0x" + "ff" * 32])),
        "blockNumber": hex(draw(st.integers(1, 5))),
        "blockHash": "0x" + "11" * 32,
        "transactionHash": "0x" + draw(st.sampled_from(["22", "33"])) * 32,
        "logIndex": hex(draw(st.integers(0, 50))),
        "removed": draw(st.sampled_from([False, False, False, True])),
    }


@settings(max_examples=500)
@given(st.lists(logs(), max_size=30), st.sets(st.sampled_from(PEOPLE)))
def test_the_filter_keeps_exactly_the_transfers_to_the_recipients(
    batch: list[dict[str, Any]], recipients: set[str]
) -> None:
    allowed = frozenset({TOKEN})
    everything = decode_transfers(batch, allowed)
    assert decode_transfers(batch, allowed, recipients) == [
        t for t in everything if t.to_address in recipients
    ]


@pytest.mark.parametrize(
    ("topic", "kept"),
    [
        (_topic(PEOPLE[1]), True),
        (_topic(PEOPLE[1], upper=True), True),  # nodes may write hex in capitals
        (_topic(PEOPLE[1], padding="0" * 23 + "1"), False),  # 33 bytes of address: no ERC-20
        ("0x" + PEOPLE[1][2:], False),  # unpadded
    ],
)
def test_the_recipient_is_read_as_decoding_reads_it(topic: str, kept: bool) -> None:
    log = {
        "address": TOKEN,
        "topics": [TRANSFER_TOPIC, _topic(PEOPLE[0]), topic],
        "data": "0x" + "00" * 31 + "05",
        "blockNumber": "0x1",
        "blockHash": "0x" + "11" * 32,
        "transactionHash": "0x" + "22" * 32,
        "logIndex": "0x0",
    }
    found = decode_transfers([log], frozenset({TOKEN}), {PEOPLE[1]})
    assert [t.to_address for t in found] == ([PEOPLE[1]] if kept else [])


def test_an_empty_recipient_set_keeps_nothing_and_none_keeps_everything() -> None:
    log = {
        "address": TOKEN,
        "topics": [TRANSFER_TOPIC, _topic(PEOPLE[0]), _topic(PEOPLE[1])],
        "data": "0x" + "00" * 31 + "05",
        "blockNumber": "0x1",
        "blockHash": "0x" + "11" * 32,
        "transactionHash": "0x" + "22" * 32,
        "logIndex": "0x0",
    }
    assert decode_transfers([log], frozenset({TOKEN}), set()) == []
    [transfer] = decode_transfers([log], frozenset({TOKEN}), None)
    assert (transfer.to_address, transfer.amount_base_units) == (PEOPLE[1], 5)


# --- against anvil ------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def client(anvil: AnvilChain) -> AsyncIterator[EvmClient]:
    async with EvmClient(anvil.rpc_url, timeout_seconds=10) as evm:
        yield evm


async def test_transfers_to_is_transfers_restricted_to_the_recipients(
    anvil: AnvilChain, client: EvmClient
) -> None:
    assert isinstance(client, RecipientFilter)
    first = await anvil.block_number() + 1
    wanted, stranger = fresh_address(), fresh_address()
    for to, amount in ((wanted, 10), (stranger, 20), (wanted, 30)):
        await anvil.transfer(anvil.usdt, to, amount)
    last = await anvil.block_number()
    tokens = [anvil.usdt, anvil.usdc]

    every = await client.transfers(first, last, tokens)
    only = await client.transfers_to(first, last, tokens, {wanted})

    assert {t.to_address for t in every} >= {wanted, stranger}
    assert only == [t for t in every if t.to_address == wanted]
    assert [t.amount_base_units for t in only] == [10, 30]


class CountingClient(EvmClient):
    def __init__(self, rpc_url: str) -> None:
        super().__init__(rpc_url)
        self.asked: list[Container[str] | None] = []

    async def transfer_logs(
        self,
        from_block: int,
        to_block: int,
        contracts: Sequence[str],
        recipients: Container[str] | None,
    ) -> TransferLogs:
        # Every log query of the client (transfers, transfers_to) goes through here.
        self.asked.append(recipients)
        return await super().transfer_logs(from_block, to_block, contracts, recipients)


async def test_the_engine_asks_for_its_watch_set_only(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database
) -> None:
    client = CountingClient(anvil.rpc_url)
    try:
        engine = await make_engine(client=client)
        await engine.resume()
        deposit = fresh_address()
        await announce(watcher_db, engine.network, [deposit])
        await anvil.transfer(anvil.usdt, fresh_address(), 5)
        await anvil.transfer(anvil.usdt, deposit, 7)
        await scan_to_head(engine)
    finally:
        await client.close()
    assert client.asked, "the engine read no logs"
    assert all(asked is engine.watch_set or asked == {deposit} for asked in client.asked)
    assert deposit in engine.watch_set
