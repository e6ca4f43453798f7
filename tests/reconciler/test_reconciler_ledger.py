"""The ledger against the real PostgreSQL: snapshots become balanced entries exactly once,
reversals take them back, older snapshots change nothing, and the database itself refuses
an entry that does not balance."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from stablegate_common.core.assets import MAINNET, AssetRegistry
from stablegate_common.db import Database
from stablegate_common.events import Event
from tests.reconciler.factories import (
    USDT,
    chain_transfer_event,
    intent_event,
    next_snapshot,
    transfer,
    with_status,
)
from tests.reconciler.support import (
    account_balances,
    balance,
    deliver,
    deliver_transfer,
    entries,
    observed,
    outbox,
    posting_sums,
)


def codes(event: Event) -> tuple[str, str]:
    d = event.data
    return (
        f"asset:{d['network']}:{d['asset']}:{d['deposit_address']}",
        f"liability:merchant:{d['merchant_id']}:{d['network']}:{d['asset']}",
    )


async def test_a_confirmed_transfer_is_booked_once_with_balanced_postings(
    ledger_db: Database,
) -> None:
    paid = transfer(25 * USDT)
    event = intent_event(sequence=2, transfers=[paid])
    asset, liability = codes(event)

    await deliver(ledger_db, event)

    [entry] = await entries(ledger_db)
    assert entry.kind == "transfer_confirmed"
    assert (entry.transfer_id, entry.booking_no) == (paid.transfer_id, 1)
    assert entry.postings == {asset: 25 * USDT, liability: -25 * USDT}
    assert sum(entry.postings.values()) == 0
    assert await account_balances(ledger_db) == {asset: 25 * USDT, liability: -25 * USDT}
    owed = await balance(ledger_db, event.data["merchant_id"])
    assert owed is not None
    assert (owed.available_base_units, owed.sequence, owed.decimals) == (25 * USDT, 1, 6)
    [message] = await outbox(ledger_db, "balance.updated")
    merchant = event.data["merchant_id"]
    assert message.body["subject"] == f"{merchant}:ethereum:USDT"
    assert message.body["sequence"] == 1
    assert message.body["data"] == {
        "merchant_id": merchant,
        "network": "ethereum",
        "asset": "USDT",
        "decimals": 6,
        "available_base_units": str(25 * USDT),
        "reserved_base_units": "0",
    }


async def test_a_pending_transfer_books_nothing(ledger_db: Database) -> None:
    await deliver(ledger_db, intent_event(transfers=[transfer(status="pending")]))

    assert await entries(ledger_db) == []
    assert await outbox(ledger_db, "balance.updated") == []


async def test_the_same_event_delivered_twice_books_once(ledger_db: Database) -> None:
    event = intent_event(sequence=2, transfers=[transfer()])

    await deliver(ledger_db, event)
    await deliver(ledger_db, event)

    assert len(await entries(ledger_db)) == 1
    assert len(await outbox(ledger_db, "balance.updated")) == 1


async def test_a_newer_snapshot_listing_the_same_transfer_books_nothing_more(
    ledger_db: Database,
) -> None:
    paid = transfer()
    first = intent_event(sequence=2, transfers=[paid])
    await deliver(ledger_db, first)

    await deliver(ledger_db, next_snapshot(first, sequence=3, transfers=[paid]))
    await deliver(ledger_db, next_snapshot(first, sequence=4, transfers=[paid]))

    assert len(await entries(ledger_db)) == 1
    owed = await balance(ledger_db, first.data["merchant_id"])
    assert owed is not None
    assert (owed.available_base_units, owed.sequence) == (paid.amount_base_units, 1)


async def test_a_second_confirmed_transfer_adds_its_own_entry(ledger_db: Database) -> None:
    one, two = transfer(10 * USDT), transfer(15 * USDT, log_index=1)
    first = intent_event(sequence=2, transfers=[one])
    await deliver(ledger_db, first)

    await deliver(ledger_db, next_snapshot(first, sequence=3, transfers=[one, two]))

    assert [e.transfer_id for e in await entries(ledger_db)] == sorted(
        [one.transfer_id, two.transfer_id]
    )
    owed = await balance(ledger_db, first.data["merchant_id"])
    assert owed is not None
    assert (owed.available_base_units, owed.sequence) == (25 * USDT, 2)


async def test_a_reverted_transfer_gets_a_reversing_entry_and_the_balance_returns_to_zero(
    ledger_db: Database,
) -> None:
    paid = transfer(25 * USDT)
    first = intent_event(sequence=2, transfers=[paid])
    asset, liability = codes(first)
    await deliver(ledger_db, first)

    await deliver(
        ledger_db, next_snapshot(first, sequence=3, transfers=[with_status(paid, "reverted")])
    )

    booked, reversed_ = await entries(ledger_db)
    assert (booked.kind, booked.booking_no) == ("transfer_confirmed", 1)
    assert reversed_.kind == "transfer_reverted"
    assert reversed_.booking_no == 2
    assert reversed_.postings == {asset: -25 * USDT, liability: 25 * USDT}
    assert await account_balances(ledger_db) == {asset: 0, liability: 0}
    assert await posting_sums(ledger_db) == {asset: 0, liability: 0}
    owed = await balance(ledger_db, first.data["merchant_id"])
    assert owed is not None
    assert (owed.available_base_units, owed.sequence) == (0, 2)
    announced = await outbox(ledger_db, "balance.updated")
    assert [(m.body["sequence"], m.body["data"]["available_base_units"]) for m in announced] == [
        (1, str(25 * USDT)),
        (2, "0"),
    ]


async def test_a_booked_transfer_the_intent_no_longer_lists_is_reversed(
    ledger_db: Database,
) -> None:
    first = intent_event(sequence=2, transfers=[transfer()])
    await deliver(ledger_db, first)

    await deliver(ledger_db, next_snapshot(first, sequence=3, transfers=[]))

    assert [e.kind for e in await entries(ledger_db)] == [
        "transfer_confirmed",
        "transfer_reverted",
    ]
    assert set((await account_balances(ledger_db)).values()) == {0}


async def test_a_transfer_confirmed_again_after_a_reorg_is_booked_again(
    ledger_db: Database,
) -> None:
    paid = transfer(7 * USDT)
    first = intent_event(sequence=2, transfers=[paid])
    await deliver(ledger_db, first)
    await deliver(
        ledger_db, next_snapshot(first, sequence=3, transfers=[with_status(paid, "pending")])
    )
    await deliver(ledger_db, next_snapshot(first, sequence=4, transfers=[paid]))

    assert [(e.kind, e.booking_no) for e in await entries(ledger_db)] == [
        ("transfer_confirmed", 1),
        ("transfer_reverted", 2),
        ("transfer_confirmed", 3),
    ]
    owed = await balance(ledger_db, first.data["merchant_id"])
    assert owed is not None
    assert (owed.available_base_units, owed.sequence) == (7 * USDT, 3)


async def test_an_older_snapshot_arriving_late_is_ignored(ledger_db: Database) -> None:
    paid = transfer()
    newer = intent_event(sequence=5, transfers=[paid])
    older = next_snapshot(newer, sequence=4, transfers=[with_status(paid, "pending")])
    same = next_snapshot(newer, sequence=5, transfers=[])  # another event, same sequence

    await deliver(ledger_db, newer)
    await deliver(ledger_db, older)
    await deliver(ledger_db, same)

    assert [e.kind for e in await entries(ledger_db)] == ["transfer_confirmed"]
    owed = await balance(ledger_db, newer.data["merchant_id"])
    assert owed is not None
    assert owed.available_base_units == paid.amount_base_units


async def test_concurrent_snapshots_listing_one_transfer_book_it_once(
    ledger_db: Database,
) -> None:
    paid = transfer()
    first = intent_event(sequence=2, transfers=[paid])
    snapshots = [first] + [next_snapshot(first, sequence=n, transfers=[paid]) for n in range(3, 9)]

    await asyncio.gather(*(deliver(ledger_db, e) for e in snapshots))

    assert len(await entries(ledger_db)) == 1
    owed = await balance(ledger_db, first.data["merchant_id"])
    assert owed is not None
    assert owed.available_base_units == paid.amount_base_units


async def test_balances_follow_merchant_network_and_asset(ledger_db: Database) -> None:
    usdt = intent_event(transfers=[transfer(3 * USDT)])
    merchant = usdt.data["merchant_id"]
    usdc = intent_event(transfers=[transfer(4 * USDT)], merchant_id=merchant, asset="USDC")
    again = intent_event(transfers=[transfer(5 * USDT)], merchant_id=merchant)

    for event in (usdt, usdc, again):
        await deliver(ledger_db, event)

    published = {
        (m.body["subject"], m.body["sequence"]): m.body["data"]["available_base_units"]
        for m in await outbox(ledger_db, "balance.updated")
    }
    assert published == {
        (f"{merchant}:ethereum:USDT", 1): str(3 * USDT),
        (f"{merchant}:ethereum:USDC", 1): str(4 * USDT),
        (f"{merchant}:ethereum:USDT", 2): str(8 * USDT),
    }
    assert await account_balances(ledger_db) == await posting_sums(ledger_db)


async def _insert_entry(db: Database, entry_id: str, amounts: list[int]) -> None:
    """An entry written in SQL the way a buggy writer might, one posting per account."""
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO journal_entries (id, kind, transfer_id, booking_no, intent_id, "
                "event_id) VALUES (:id, 'transfer_confirmed', :id, 1, 'pi_x', 'evt_x')"
            ),
            {"id": entry_id},
        )
        for n, amount in enumerate(amounts):
            account = await session.scalar(
                text(
                    "INSERT INTO accounts (code, kind, network, asset, balance_base_units) "
                    "VALUES (:c, 'asset', 'ethereum', 'USDT', 0) RETURNING id"
                ),
                {"c": f"asset:test:{entry_id}:{n}"},
            )
            await session.execute(
                text(
                    "INSERT INTO postings (entry_id, account_id, amount_base_units) "
                    "VALUES (:e, :a, :m)"
                ),
                {"e": entry_id, "a": account, "m": amount},
            )


@pytest.mark.parametrize(
    "amounts",
    [
        pytest.param([100, -99], id="sum-not-zero"),
        pytest.param([100], id="one-posting"),
        pytest.param([], id="no-postings"),
        pytest.param([100, -50, -49], id="three-postings-off-by-one"),
    ],
)
async def test_the_database_refuses_an_entry_that_does_not_balance(
    ledger_db: Database, amounts: list[int]
) -> None:
    with pytest.raises(DBAPIError, match="does not balance"):
        await _insert_entry(ledger_db, "le_unbalanced", amounts)

    assert await entries(ledger_db) == []


async def test_the_database_accepts_a_balanced_entry_written_row_by_row(
    ledger_db: Database,
) -> None:
    await _insert_entry(ledger_db, "le_balanced", [100, -60, -40])

    [entry] = await entries(ledger_db)
    assert sum(entry.postings.values()) == 0


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE postings SET amount_base_units = amount_base_units * 2",
        "DELETE FROM postings",
        "UPDATE journal_entries SET kind = 'transfer_reverted'",
        "DELETE FROM journal_entries",
    ],
)
async def test_the_ledger_is_append_only(ledger_db: Database, statement: str) -> None:
    await deliver(ledger_db, intent_event(transfers=[transfer()]))

    with pytest.raises(DBAPIError, match="append-only"):
        async with ledger_db.transaction() as session:
            await session.execute(text(statement))


async def test_chain_reports_are_kept_newest_first_including_unclaimed_ones(
    ledger_db: Database,
) -> None:
    registry = AssetRegistry.from_mapping(MAINNET)
    detected = chain_transfer_event("detected", sequence=1, confirmations=1)
    same_log = {k: detected.data[k] for k in ("tx_hash", "log_index", "to_address", "block_hash")}
    confirmed = chain_transfer_event("confirmed", sequence=2, **same_log)
    lookalike = chain_transfer_event(
        "confirmed", token_contract="0x" + "ab" * 20, to_address=detected.data["to_address"]
    )

    await deliver_transfer(ledger_db, confirmed, registry)
    await deliver_transfer(ledger_db, detected, registry)  # older, arrives late
    await deliver_transfer(ledger_db, lookalike, registry)

    rows = {r.tx_hash: r for r in await observed(ledger_db)}
    assert rows[detected.data["tx_hash"]].status == "confirmed"
    assert rows[detected.data["tx_hash"]].asset == "USDT"
    assert rows[detected.data["tx_hash"]].sequence == 2
    assert rows[lookalike.data["tx_hash"]].asset is None  # not a registered token
