"""A transfer row that a reorg reverted and the chain then shows again takes the facts the
chain shows now: a re-executed transaction can emit a different log at the same
(tx, index), and crediting the old amount or recipient would pay the wrong intent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from stablegate_common.chains import TokenTransfer
from stablegate_common.db import Database
from stablegate_common.watcher import repository
from stablegate_common.watcher.models import ObservedTransfer

pytestmark = pytest.mark.asyncio(loop_scope="session")

NETWORK = "ethereum"
TX = "0x" + "ab" * 32


def _transfer(**fields: object) -> TokenTransfer:
    values: dict[str, object] = {
        "token_contract": "0x" + "11" * 20,
        "tx_hash": TX,
        "log_index": 3,
        "block_number": 100,
        "block_hash": "0x" + "aa" * 32,
        "from_address": "0x" + "22" * 20,
        "to_address": "0x" + "33" * 20,
        "amount_base_units": 5_000_000,
    }
    values.update(fields)
    return TokenTransfer(**values)  # type: ignore[arg-type]


async def test_a_reverted_transfer_that_comes_back_takes_every_new_fact(
    watcher_db: Database,
) -> None:
    first = _transfer()
    times = {
        100: datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
        101: datetime(2026, 12, 7, 12, 1, tzinfo=UTC),
    }
    async with watcher_db.transaction() as session:
        await repository.record_transfers(session, NETWORK, [first], times, head=100)
        [reverted] = await repository.revert_transfers(session, NETWORK, above=99)
    assert reverted.status == "reverted"

    # The same transaction mined again in block 101, where it emits another log at index 3.
    again = _transfer(
        token_contract="0x" + "44" * 20,
        block_number=101,
        block_hash="0x" + "bb" * 32,
        from_address="0x" + "55" * 20,
        to_address="0x" + "66" * 20,
        amount_base_units=7,
    )
    async with watcher_db.transaction() as session:
        [back] = await repository.record_transfers(session, NETWORK, [again], times, head=101)
    expected = (
        again.token_contract,
        again.from_address,
        again.to_address,
        7,
        101,
        again.block_hash,
        times[101],
        "pending",
    )
    assert (
        back.token_contract,
        back.from_address,
        back.to_address,
        back.amount,
        back.block_number,
        back.block_hash,
        back.block_timestamp,
        back.status,
    ) == expected
    assert back.sequence == reverted.sequence + 1
    async with watcher_db.sessions() as session:
        row = (await session.scalars(select(ObservedTransfer))).one()
    assert (
        row.token_contract,
        row.from_address,
        row.to_address,
        row.amount,
        row.block_number,
        row.block_hash,
        row.block_timestamp,
        row.status,
    ) == expected


async def test_a_live_transfer_seen_again_is_left_alone(watcher_db: Database) -> None:
    times = {100: datetime(2026, 12, 7, 12, 0, tzinfo=UTC)}
    async with watcher_db.transaction() as session:
        [row] = await repository.record_transfers(session, NETWORK, [_transfer()], times, head=100)
        again = await repository.record_transfers(
            session, NETWORK, [_transfer(amount_base_units=9)], times, head=101
        )
    assert again == []
    async with watcher_db.sessions() as session:
        stored = (await session.scalars(select(ObservedTransfer))).one()
    assert (stored.amount, stored.sequence) == (row.amount, row.sequence)
