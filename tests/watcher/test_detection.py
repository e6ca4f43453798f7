"""Detection against anvil and PostgreSQL: what the engine records and queues in the
outbox for transfers to watched addresses, and what it leaves alone."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from stablegate_common.core.assets import Network
from stablegate_common.db import Database
from stablegate_common.events import Event, parse_payload
from stablegate_common.events.contracts import ChainHead, TransferConfirmed, TransferDetected
from stablegate_common.watcher.models import BlockHash, ScanCursor
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.watcher import (
    CONFIRMATIONS,
    EngineFactory,
    announce,
    queued_events,
    scan_to_head,
    set_cursor,
    transfer_rows,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _block_of(anvil: AnvilChain, tx_hash: str) -> int:
    return int((await anvil.receipt(tx_hash))["blockNumber"], 16)


async def _transfer_events(db: Database) -> list[Event]:
    return await queued_events(db, "transfer.detected", "transfer.confirmed", "transfer.reverted")


async def test_usdt_transfer_is_detected_then_confirmed_after_n_blocks(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    engine = await make_engine()
    await engine.resume()
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    payer = anvil.accounts[1]

    tx_hash = await anvil.transfer(anvil.usdt, deposit, 12_500_000, sender=payer)
    block = await _block_of(anvil, tx_hash)
    await scan_to_head(engine)

    [detected] = await queued_events(watcher_db, "transfer.detected")
    assert detected.subject == f"ethereum:{tx_hash}:0"
    assert detected.sequence == 1
    assert detected.producer == "chain-watcher-eth"
    payload = parse_payload(detected, TransferDetected)
    assert payload.network == "ethereum"
    assert payload.chain_id == anvil.chain_id
    assert payload.token_contract == anvil.usdt.lower()
    assert payload.tx_hash == tx_hash
    assert payload.block_number == block
    assert payload.block_hash == await anvil.block_hash(block)
    assert payload.from_address == payer.lower()
    assert payload.to_address == deposit
    assert payload.amount_base_units == 12_500_000
    assert payload.confirmations == 1
    assert payload.confirmations_required == CONFIRMATIONS
    assert detected.data["amount_base_units"] == "12500000"  # a string on the wire
    assert await queued_events(watcher_db, "transfer.confirmed") == []

    await anvil.mine(CONFIRMATIONS - 2)  # one short of the depth
    await scan_to_head(engine)
    assert await queued_events(watcher_db, "transfer.confirmed") == []
    [row] = await transfer_rows(watcher_db)
    assert (row.status, row.confirmations) == ("pending", CONFIRMATIONS - 1)

    await anvil.mine(1)
    await scan_to_head(engine)
    [confirmed] = await queued_events(watcher_db, "transfer.confirmed")
    assert confirmed.subject == detected.subject
    assert confirmed.sequence == 2
    confirmed_payload = parse_payload(confirmed, TransferConfirmed)
    assert confirmed_payload.confirmations == CONFIRMATIONS
    assert confirmed_payload.amount_base_units == 12_500_000
    [row] = await transfer_rows(watcher_db)
    assert (row.status, row.sequence, row.amount) == ("confirmed", 2, 12_500_000)
    assert row.confirmed_at is not None

    # Nothing more is published about it however deep it gets.
    await anvil.mine(5)
    await scan_to_head(engine)
    transfer_events = await queued_events(
        watcher_db, "transfer.detected", "transfer.confirmed", "transfer.reverted"
    )
    assert [e.type for e in transfer_events] == ["transfer.detected", "transfer.confirmed"]


async def test_chain_head_events_report_head_and_cursor(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database
) -> None:
    engine = await make_engine()
    await engine.resume()
    await anvil.mine(2)
    await scan_to_head(engine)
    head = await anvil.block_number()
    last = parse_payload((await queued_events(watcher_db, "chain.head"))[-1], ChainHead)
    assert (last.network, last.head_block, last.scanned_block) == ("ethereum", head, head)
    assert isinstance(last.head_timestamp, datetime)

    published = len(await queued_events(watcher_db, "chain.head"))
    await engine.tick()  # same head: no new view, no event
    assert len(await queued_events(watcher_db, "chain.head")) == published
    sequences = [e.sequence for e in await queued_events(watcher_db, "chain.head")]
    assert sequences == sorted(sequences)


async def test_transfer_to_an_unwatched_address_is_not_recorded(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    engine = await make_engine()
    await engine.resume()
    watched = fresh_address()
    await announce(watcher_db, network, [watched])
    await anvil.transfer(anvil.usdt, fresh_address(), 1_000_000)
    await anvil.transfer(anvil.usdc, fresh_address(), 1_000_000)
    await scan_to_head(engine)
    assert await transfer_rows(watcher_db) == []
    assert await queued_events(watcher_db, "transfer.detected") == []


async def test_lookalike_token_credits_nothing_while_the_real_token_does(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    engine = await make_engine()
    await engine.resume()
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    await anvil.fake_transfer(anvil.accounts[1], deposit, 5_000_000)
    real = await anvil.transfer(anvil.usdc, deposit, 7_000_000)
    await anvil.fake_transfer(anvil.accounts[2], deposit, 9_000_000)
    await scan_to_head(engine)

    rows = await transfer_rows(watcher_db)
    assert [(r.tx_hash, r.token_contract, r.amount) for r in rows] == [
        (real, anvil.usdc.lower(), 7_000_000)
    ]
    [event] = await queued_events(watcher_db, "transfer.detected")
    assert event.data["token_contract"] == anvil.usdc.lower()


async def test_zero_value_transfer_is_recorded_as_ignored_without_an_event(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    engine = await make_engine()
    await engine.resume()
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    victim = anvil.accounts[3]
    tx_hash = await anvil.zero_value_transfer_from(anvil.usdt, victim, deposit)
    await scan_to_head(engine)
    await anvil.mine(CONFIRMATIONS)
    await scan_to_head(engine)

    [row] = await transfer_rows(watcher_db)
    assert (row.tx_hash, row.status, row.ignore_reason, row.amount) == (
        tx_hash,
        "ignored",
        "zero_value",
        0,
    )
    assert row.from_address == victim.lower()
    assert (
        await queued_events(
            watcher_db, "transfer.detected", "transfer.confirmed", "transfer.reverted"
        )
        == []
    )


async def test_several_transfers_in_one_window_each_get_their_own_subject(
    isolated_anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    anvil = isolated_anvil
    engine = await make_engine()
    await engine.resume()
    first, second = fresh_address(), fresh_address()
    await announce(watcher_db, network, [first, second])
    await anvil.set_automine(False)
    try:
        hashes = [
            await anvil.transfer(anvil.usdt, first, 1, sender=anvil.accounts[1]),
            await anvil.transfer(anvil.usdt, second, 2, sender=anvil.accounts[2]),
            await anvil.transfer(anvil.usdc, first, 3, sender=anvil.accounts[3]),
        ]
        await anvil.mine(1)
    finally:
        await anvil.set_automine(True)
    await scan_to_head(engine)
    events = await queued_events(watcher_db, "transfer.detected")
    assert sorted(e.data["tx_hash"] for e in events) == sorted(hashes)
    assert len({e.subject for e in events}) == 3
    assert sorted(int(e.data["amount_base_units"]) for e in events) == [1, 2, 3]


async def test_restart_resumes_from_the_cursor_and_rescans_nothing_twice(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    first = await make_engine()
    await first.resume()
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    await anvil.transfer(anvil.usdt, deposit, 4_000_000)
    await scan_to_head(first)
    cursor_before = await _cursor(watcher_db)
    rows_before = [(r.tx_hash, r.sequence) for r in await transfer_rows(watcher_db)]
    events_before = await _transfer_events(watcher_db)

    # A new process over the same schema: no new rows, no new transfer events (it may
    # announce its chain.head view), cursor kept.
    second = await make_engine(start_block=0)  # start_block only applies without a cursor
    assert await second.resume() == cursor_before
    assert deposit in second.watch_set
    await scan_to_head(second)
    assert [(r.tx_hash, r.sequence) for r in await transfer_rows(watcher_db)] == rows_before
    assert await _transfer_events(watcher_db) == events_before

    # Even blocks scanned a second time (cursor forced back) add nothing.
    await set_cursor(watcher_db, cursor_before - 3)
    third = await make_engine()
    await third.resume()
    await scan_to_head(third)
    assert [(r.tx_hash, r.sequence) for r in await transfer_rows(watcher_db)] == rows_before
    assert await _transfer_events(watcher_db) == events_before
    assert [e.type for e in events_before] == ["transfer.detected"]
    assert await _cursor(watcher_db) == cursor_before


async def test_new_cursor_starts_below_the_head_when_asked(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database
) -> None:
    head = await anvil.block_number()
    engine = await make_engine(start_block=None, start_blocks_back=5)
    assert await engine.resume() == head - 5 - 1
    # The header at the cursor is kept, so the first window can prove continuity.
    async with watcher_db.sessions() as session:
        numbers = list(await session.scalars(select(BlockHash.number)))
    assert numbers == [head - 6]


async def test_a_start_block_above_the_head_is_waited_for(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database, network: Network
) -> None:
    head = await anvil.block_number()
    # No backfill: it would search below the start block for the announced address.
    engine = await make_engine(start_block=head + 3, backfill_blocks=0)
    assert await engine.resume() == head + 2
    deposit = fresh_address()
    await announce(watcher_db, network, [deposit])
    early = await anvil.transfer(anvil.usdt, deposit, 1)  # block head + 1: before the start
    assert await engine.tick() is False
    await anvil.mine(1)
    late = await anvil.transfer(anvil.usdt, deposit, 2)  # block head + 3
    await scan_to_head(engine)
    assert [r.tx_hash for r in await transfer_rows(watcher_db)] == [late]
    assert early != late


async def test_only_the_reorg_window_of_hashes_is_kept(
    anvil: AnvilChain, make_engine: EngineFactory, watcher_db: Database
) -> None:
    engine = await make_engine(reorg_window=8, window_blocks=5, max_window_blocks=5)
    await engine.resume()
    await anvil.mine(30)
    await scan_to_head(engine)
    head = await anvil.block_number()
    async with watcher_db.sessions() as session:
        numbers = sorted(await session.scalars(select(BlockHash.number)))
    assert numbers == list(range(head - 7, head + 1))


async def _cursor(db: Database) -> int:
    async with db.sessions() as session:
        value = await session.scalar(select(ScanCursor.last_scanned_block))
    assert value is not None
    return int(value)
