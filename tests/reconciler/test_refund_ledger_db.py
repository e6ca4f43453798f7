"""Refunds and payouts in the ledger, against the real PostgreSQL through the consumer's
own path (handler behind the inbox): a signed refund reserves what it pays from the
merchant's available balance, its confirmation settles it from the deposit address, a
revert on chain releases the reserve and books the fee, a reorg reserves it again; each
change of the balance is one `balance.updated` with a newer sequence. An update without
its merchant, or with another one, is refused whole. A payout wallet's holding is in
the books but not reconciled."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from sqlalchemy import select

from stablegate_common.core.assets import MAINNET, AssetRegistry
from stablegate_common.db import Database
from stablegate_common.events import Event
from stablegate_reconciler.ledger.models import Balance, OutgoingBooking
from stablegate_reconciler.ledger.rules import UnbookableTransfer
from stablegate_reconciler.reconciliation.service import holdings_to_check
from tests.reconciler.factories import (
    USDT,
    evm_address,
    intent_event,
    next_snapshot,
    next_update,
    outgoing_event,
    transfer,
)
from tests.reconciler.support import (
    account_balances,
    balance,
    deliver,
    deliver_outgoing,
    entries,
    outbox,
    posting_sums,
)

FEE = 52_000 * 2 * 10**9
UNMINED: dict[str, Any] = {
    "block_number": None,
    "block_hash": None,
    "receipt_status": None,
    "gas_used": None,
    "fee_paid_base_units": None,
}


@pytest.fixture
def registry() -> AssetRegistry:
    return AssetRegistry.from_mapping(MAINNET)


async def paid_intent(db: Database, deposit: str, amount: int) -> Event:
    event = intent_event(transfers=[transfer(amount)], deposit_address=deposit)
    await deliver(db, event)
    return event


def refund_of(merchant: str, deposit: str, amount: int, *, sequence: int, **changes: Any) -> Event:
    """The gateway's update of a refund from `deposit` to a customer, signed unless told."""
    values: dict[str, Any] = {
        "purpose": "refund",
        "state": "signed",
        "previous_state": "awaiting_signature",
        "source_address": deposit,
        "destination_address": evm_address(),
        "amount_base_units": amount,
        "reference": "re_" + secrets.token_hex(8),
        "merchant_id": merchant,
        **UNMINED,
    }
    values.update(changes)
    return outgoing_event(sequence=sequence, **values)


def confirmed(
    previous: Event, *, sequence: int, fee: int = FEE, block: int = 130, **changes: Any
) -> Event:
    values: dict[str, Any] = {
        "state": "confirmed",
        "block_number": block,
        "block_hash": "0x" + "ab" * 32,
        "receipt_status": "success",
        "gas_used": 52_000,
        "fee_paid_base_units": fee,
    }
    values.update(changes)
    return next_update(previous, sequence=sequence, **values)


async def announced(db: Database, merchant: str) -> list[tuple[int, int, int]]:
    """The merchant's `balance.updated` events: (sequence, available, reserved)."""
    return [
        (
            m.body["sequence"],
            int(m.body["data"]["available_base_units"]),
            int(m.body["data"]["reserved_base_units"]),
        )
        for m in await outbox(db, "balance.updated")
        if m.body["data"]["merchant_id"] == merchant
    ]


async def owed(db: Database, merchant: str) -> tuple[int, int, int]:
    found = await balance(db, merchant)
    assert found is not None
    return found.available_base_units, found.reserved_base_units, found.sequence


def codes(merchant: str, deposit: str) -> tuple[str, str, str]:
    return (
        f"liability:merchant:{merchant}:ethereum:USDT",
        f"reserved:merchant:{merchant}:ethereum:USDT",
        f"asset:ethereum:USDT:{deposit}",
    )


async def test_a_signed_refund_is_reserved_and_its_confirmation_settles_it(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    deposit = evm_address()
    merchant = (await paid_intent(ledger_db, deposit, 25 * USDT)).data["merchant_id"]
    available, reserved, holding = codes(merchant, deposit)
    signed = refund_of(merchant, deposit, 10 * USDT, sequence=3)

    await deliver_outgoing(ledger_db, signed, registry)

    assert await owed(ledger_db, merchant) == (15 * USDT, 10 * USDT, 2)
    assert await announced(ledger_db, merchant) == [
        (1, 25 * USDT, 0),
        (2, 15 * USDT, 10 * USDT),
    ]
    books = await account_balances(ledger_db)
    assert (books[available], books[reserved], books[holding]) == (
        -15 * USDT,
        -10 * USDT,
        25 * USDT,  # still at the deposit address
    )
    [reserve] = [e for e in await entries(ledger_db) if e.transfer_id == signed.subject]
    assert (reserve.kind, reserve.postings) == (
        "outgoing_reserve",
        {available: 10 * USDT, reserved: -10 * USDT},
    )

    sent = next_update(signed, sequence=4, state="broadcast")
    await deliver_outgoing(ledger_db, sent, registry)
    assert len(await announced(ledger_db, merchant)) == 2  # still reserved: nothing new

    await deliver_outgoing(ledger_db, confirmed(sent, sequence=5), registry)

    assert await owed(ledger_db, merchant) == (15 * USDT, 0, 3)
    assert (await announced(ledger_db, merchant))[-1] == (3, 15 * USDT, 0)
    books = await account_balances(ledger_db)
    assert books == {
        available: -15 * USDT,
        reserved: 0,
        holding: 15 * USDT,  # the tokens left the deposit address
        "expense:network_fees:ethereum": FEE,  # the business pays the gas
        f"native:ethereum:ETH:{deposit}": -FEE,
    }
    assert await posting_sums(ledger_db) == books
    kinds = [e.kind for e in await entries(ledger_db) if e.transfer_id == signed.subject]
    assert kinds == ["outgoing_reserve", "outgoing_reversal", "outgoing_movement", "network_fee"]


async def test_a_refund_reverted_on_chain_releases_the_reserve_and_books_its_fee(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    deposit = evm_address()
    merchant = (await paid_intent(ledger_db, deposit, 25 * USDT)).data["merchant_id"]
    available, reserved, holding = codes(merchant, deposit)
    sent = refund_of(merchant, deposit, 25 * USDT, sequence=4, state="broadcast")
    await deliver_outgoing(ledger_db, sent, registry)
    assert await owed(ledger_db, merchant) == (0, 25 * USDT, 2)

    reverted = next_update(
        sent,
        sequence=5,
        state="failed",
        block_number=131,
        receipt_status="reverted",
        gas_used=30_000,
        fee_paid_base_units=FEE,
        failure_reason="execution reverted",
    )
    await deliver_outgoing(ledger_db, reverted, registry)

    assert await owed(ledger_db, merchant) == (25 * USDT, 0, 3)
    assert (await announced(ledger_db, merchant))[-1] == (3, 25 * USDT, 0)
    books = await account_balances(ledger_db)
    assert (books[available], books[reserved], books[holding]) == (-25 * USDT, 0, 25 * USDT)
    assert books["expense:network_fees:ethereum"] == FEE
    assert books[f"native:ethereum:ETH:{deposit}"] == -FEE


@pytest.mark.parametrize("end", ["canceled", "failed", "replaced"])
async def test_a_refund_that_ends_unmined_releases_the_reserve(
    ledger_db: Database, registry: AssetRegistry, end: str
) -> None:
    deposit = evm_address()
    merchant = (await paid_intent(ledger_db, deposit, 9 * USDT)).data["merchant_id"]
    signed = refund_of(merchant, deposit, 4 * USDT, sequence=3)
    await deliver_outgoing(ledger_db, signed, registry)

    await deliver_outgoing(ledger_db, next_update(signed, sequence=4, state=end), registry)

    assert await owed(ledger_db, merchant) == (9 * USDT, 0, 3)
    assert [e.kind for e in await entries(ledger_db) if e.transfer_id == signed.subject] == [
        "outgoing_reserve",
        "outgoing_reversal",
    ]
    assert "expense:network_fees:ethereum" not in await account_balances(ledger_db)


async def test_a_reorg_reserves_the_refund_again_and_the_next_confirmation_settles_it(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    deposit = evm_address()
    merchant = (await paid_intent(ledger_db, deposit, 20 * USDT)).data["merchant_id"]
    available, reserved, holding = codes(merchant, deposit)
    sent = refund_of(merchant, deposit, 8 * USDT, sequence=4, state="broadcast")
    done = confirmed(sent, sequence=5)
    for event in (sent, done):
        await deliver_outgoing(ledger_db, event, registry)
    assert await owed(ledger_db, merchant) == (12 * USDT, 0, 3)

    reorged = next_update(done, sequence=6, state="broadcast", **UNMINED)
    await deliver_outgoing(ledger_db, reorged, registry)

    assert await owed(ledger_db, merchant) == (12 * USDT, 8 * USDT, 4)
    books = await account_balances(ledger_db)
    assert (books[available], books[reserved], books[holding]) == (
        -12 * USDT,
        -8 * USDT,
        20 * USDT,
    )
    assert books["expense:network_fees:ethereum"] == 0

    await deliver_outgoing(ledger_db, confirmed(reorged, sequence=7, fee=FEE + 5), registry)

    assert await owed(ledger_db, merchant) == (12 * USDT, 0, 5)
    assert [s for s, _, _ in await announced(ledger_db, merchant)] == [1, 2, 3, 4, 5]
    books = await account_balances(ledger_db)
    assert (books[available], books[reserved], books[holding]) == (-12 * USDT, 0, 12 * USDT)
    assert books["expense:network_fees:ethereum"] == FEE + 5
    assert await posting_sums(ledger_db) == books


async def test_a_refund_first_seen_confirmed_settles_in_one_announcement(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    deposit = evm_address()
    merchant = (await paid_intent(ledger_db, deposit, 6 * USDT)).data["merchant_id"]
    signed = refund_of(merchant, deposit, 6 * USDT, sequence=3)
    done = confirmed(signed, sequence=5)

    # The confirmation overtook the older updates: those change nothing when they arrive.
    for event in (done, signed, next_update(signed, sequence=4, state="broadcast")):
        await deliver_outgoing(ledger_db, event, registry)

    assert await owed(ledger_db, merchant) == (0, 0, 2)
    assert await announced(ledger_db, merchant) == [(1, 6 * USDT, 0), (2, 0, 0)]


async def test_a_refund_and_a_payment_at_once_announce_distinct_sequences(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    deposit = evm_address()
    first = await paid_intent(ledger_db, deposit, 10 * USDT)
    merchant = first.data["merchant_id"]
    paid_more = next_snapshot(
        first, sequence=2, transfers=[transfer(10 * USDT) for _ in range(2)]
    )  # another intent payment, booked while the refund is reserved
    signed = refund_of(merchant, deposit, 3 * USDT, sequence=3)

    await asyncio.gather(
        deliver(ledger_db, paid_more), deliver_outgoing(ledger_db, signed, registry)
    )

    got = await announced(ledger_db, merchant)
    assert sorted(s for s, _, _ in got) == [1, 2, 3]
    newest = max(got)
    # The first snapshot's transfer was dropped by the second: 20 owed, 3 of it reserved.
    assert newest[1:] == (17 * USDT, 3 * USDT)
    assert await owed(ledger_db, merchant) == (17 * USDT, 3 * USDT, 3)


async def test_a_refund_without_its_merchant_is_refused_whole(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    nameless = refund_of("mer_x", evm_address(), 5 * USDT, sequence=3, merchant_id=None)

    with pytest.raises(UnbookableTransfer) as refused:
        await deliver_outgoing(ledger_db, nameless, registry)

    assert refused.value.param == "merchant_id"
    assert await entries(ledger_db) == []
    async with ledger_db.sessions() as session:
        assert await session.get(OutgoingBooking, nameless.subject) is None  # rolled back
        assert (await session.scalars(select(Balance))).all() == []


async def test_an_update_naming_another_merchant_is_refused(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    deposit = evm_address()
    merchant = (await paid_intent(ledger_db, deposit, 5 * USDT)).data["merchant_id"]
    signed = refund_of(merchant, deposit, 5 * USDT, sequence=3)
    await deliver_outgoing(ledger_db, signed, registry)

    elsewhere = confirmed(signed, sequence=4, merchant_id="mer_" + "0" * 8)
    with pytest.raises(UnbookableTransfer) as refused:
        await deliver_outgoing(ledger_db, elsewhere, registry)
    assert refused.value.param == "merchant_id"

    assert await owed(ledger_db, merchant) == (0, 5 * USDT, 2)
    assert await balance(ledger_db, "mer_" + "0" * 8) is None


async def test_a_payout_from_the_payout_wallet_is_booked_but_the_wallet_not_reconciled(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    """The payout wallet was funded from outside the ledger: its holding in the books only
    sees what left it, so reconciliation compares the deposit addresses alone."""
    deposit, wallet = evm_address(), evm_address()
    merchant = (await paid_intent(ledger_db, deposit, 30 * USDT)).data["merchant_id"]
    sent = refund_of(
        merchant,
        wallet,
        20 * USDT,
        sequence=4,
        purpose="payout",
        state="broadcast",
        reference="po_" + secrets.token_hex(8),
    )
    await deliver_outgoing(ledger_db, sent, registry)
    assert await owed(ledger_db, merchant) == (10 * USDT, 20 * USDT, 2)

    await deliver_outgoing(ledger_db, confirmed(sent, sequence=5), registry)

    assert await owed(ledger_db, merchant) == (10 * USDT, 0, 3)
    books = await account_balances(ledger_db)
    assert books[f"asset:ethereum:USDT:{wallet}"] == -20 * USDT
    assert books[f"asset:ethereum:USDT:{deposit}"] == 30 * USDT
    assert books[f"native:ethereum:ETH:{wallet}"] == -FEE
    async with ledger_db.sessions() as session:
        checked = await holdings_to_check(session)
    assert [h.address for h in checked["ethereum"]] == [deposit]


async def test_a_sweep_that_names_a_merchant_changes_no_balance(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    deposit = evm_address()
    merchant = (await paid_intent(ledger_db, deposit, 5 * USDT)).data["merchant_id"]
    swept = outgoing_event(
        sequence=5, source_address=deposit, amount_base_units=5 * USDT, merchant_id=merchant
    )

    await deliver_outgoing(ledger_db, swept, registry)

    assert await owed(ledger_db, merchant) == (5 * USDT, 0, 1)
    assert (await account_balances(ledger_db))["treasury:ethereum:USDT"] == 5 * USDT
