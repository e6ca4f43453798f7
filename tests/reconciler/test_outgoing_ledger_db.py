"""Outgoing transfers in the ledger, against the real PostgreSQL through the consumer's
own path (handler behind the inbox): a sweep with its fee top-up leaves the deposit
address empty and the treasury and the fee expense holding what moved; a reorg reverses
exactly what was booked; a sweep reverted on chain books only its gas; redelivered,
repeated and out-of-order updates change nothing twice, also through RabbitMQ."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from stablegate_common.bus import InboxMessage
from stablegate_common.core.assets import MAINNET, AssetRegistry
from stablegate_common.db import Database
from stablegate_common.events import Event
from stablegate_reconciler.ledger.consumers import OUTGOING_CONSUMER, start_consumers
from stablegate_reconciler.ledger.models import OutgoingBooking
from stablegate_reconciler.ledger.rules import UnbookableTransfer
from tests.fixtures.bus import BusFactory, eventually
from tests.reconciler.factories import (
    USDT,
    evm_address,
    intent_event,
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
    posting_sums,
)

GWEI = 10**9
TOPUP = 50_000 * 2 * GWEI  # the estimated gas of the sweep times the planned price
TOPUP_FEE = 21_000 * 2 * GWEI
SWEEP_FEE = 41_234 * 2 * GWEI


@pytest.fixture
def registry() -> AssetRegistry:
    return AssetRegistry.from_mapping(MAINNET)


async def paid_intent(db: Database, deposit: str, amount: int) -> Event:
    event = intent_event(transfers=[transfer(amount)], deposit_address=deposit)
    await deliver(db, event)
    return event


def sweep_of(
    deposit: str, treasury: str, amount: int, *, sequence: int, **changes: object
) -> Event:
    values: dict[str, object] = {
        "source_address": deposit,
        "destination_address": treasury,
        "amount_base_units": amount,
        "fee_paid_base_units": SWEEP_FEE,
        "gas_used": 41_234,
    }
    values.update(changes)
    return outgoing_event(sequence=sequence, **values)


def topup_of(fee_wallet: str, deposit: str, *, sequence: int, **changes: object) -> Event:
    values: dict[str, object] = {
        "purpose": "fee_topup",
        "source_address": fee_wallet,
        "destination_address": deposit,
        "asset": "ETH",
        "token_contract": None,
        "decimals": 18,
        "amount_base_units": TOPUP,
        "fee_paid_base_units": TOPUP_FEE,
        "gas_used": 21_000,
    }
    values.update(changes)
    return outgoing_event(sequence=sequence, **values)


async def booking(db: Database, transfer_id: str) -> OutgoingBooking:
    async with db.sessions() as session:
        found = await session.scalar(
            select(OutgoingBooking).where(OutgoingBooking.transfer_id == transfer_id)
        )
    assert found is not None
    return found


async def test_a_sweep_with_its_top_up_empties_the_deposit_into_the_treasury(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    deposit, fee_wallet, treasury = evm_address(), evm_address(), evm_address()
    intent = await paid_intent(ledger_db, deposit, 25 * USDT)
    merchant = intent.data["merchant_id"]

    await deliver_outgoing(ledger_db, topup_of(fee_wallet, deposit, sequence=5), registry)
    # The watcher and gateway use EIP-55 where a person reads; the books key lowercase.
    checksummed = "0x" + deposit[2:].upper()
    await deliver_outgoing(
        ledger_db,
        sweep_of(checksummed, treasury.upper().replace("0X", "0x"), 25 * USDT, sequence=5),
        registry,
    )

    balances = await account_balances(ledger_db)
    assert balances == {
        f"asset:ethereum:USDT:{deposit}": 0,
        f"liability:merchant:{merchant}:ethereum:USDT": -25 * USDT,  # still owed: swept only
        "treasury:ethereum:USDT": 25 * USDT,
        f"native:ethereum:ETH:{fee_wallet}": -(TOPUP + TOPUP_FEE),
        f"native:ethereum:ETH:{deposit}": TOPUP - SWEEP_FEE,  # the margin left for gas
        "expense:network_fees:ethereum": TOPUP_FEE + SWEEP_FEE,
    }
    assert await posting_sums(ledger_db) == balances
    booked = [e for e in await entries(ledger_db) if e.transfer_id.startswith("ot_")]
    assert sorted(e.kind for e in booked) == [
        "network_fee",
        "network_fee",
        "outgoing_movement",
        "outgoing_movement",
    ]
    assert all(sum(e.postings.values()) == 0 for e in booked)
    owed = await balance(ledger_db, merchant)
    assert owed is not None
    assert owed.available_base_units == 25 * USDT


async def test_redelivered_repeated_and_older_updates_change_nothing(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    deposit = evm_address()
    await paid_intent(ledger_db, deposit, 10 * USDT)
    broadcast = sweep_of(deposit, evm_address(), 10 * USDT, sequence=4, state="broadcast")
    confirmed = next_update(broadcast, sequence=5, state="confirmed")
    again = next_update(broadcast, sequence=5, state="confirmed")  # same version, new event id

    await deliver_outgoing(ledger_db, confirmed, registry)
    before = await account_balances(ledger_db)
    for late in (confirmed, again, broadcast):  # the inbox, the version, the version
        await deliver_outgoing(ledger_db, late, registry)

    assert await account_balances(ledger_db) == before
    assert before[f"asset:ethereum:USDT:{deposit}"] == 0
    kept = await booking(ledger_db, confirmed.subject)
    assert (kept.state, kept.version, kept.entries) == ("confirmed", 5, 2)


async def test_concurrent_copies_of_an_update_book_once(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    deposit = evm_address()
    await paid_intent(ledger_db, deposit, 10 * USDT)
    first = sweep_of(deposit, evm_address(), 10 * USDT, sequence=5)
    copies = [first, *(next_update(first, sequence=5, previous_state="broadcast") for _ in "ab")]

    await asyncio.gather(*(deliver_outgoing(ledger_db, c, registry) for c in copies))

    movements = [e for e in await entries(ledger_db) if e.kind == "outgoing_movement"]
    assert len(movements) == 1
    assert (await account_balances(ledger_db))["treasury:ethereum:USDT"] == 10 * USDT


async def test_a_reorg_reverses_the_sweep_and_the_next_confirmation_books_it_again(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    deposit, treasury = evm_address(), evm_address()
    await paid_intent(ledger_db, deposit, 30 * USDT)
    confirmed = sweep_of(deposit, treasury, 30 * USDT, sequence=5, block_number=200)
    await deliver_outgoing(ledger_db, confirmed, registry)

    reorged = next_update(
        confirmed,
        sequence=6,
        state="broadcast",
        block_number=None,
        block_hash=None,
        receipt_status=None,
        gas_used=None,
        fee_paid_base_units=None,
    )
    await deliver_outgoing(ledger_db, reorged, registry)

    balances = await account_balances(ledger_db)
    assert balances[f"asset:ethereum:USDT:{deposit}"] == 30 * USDT
    assert balances["treasury:ethereum:USDT"] == 0
    assert balances["expense:network_fees:ethereum"] == 0
    assert balances[f"native:ethereum:ETH:{deposit}"] == 0
    reversals = [e for e in await entries(ledger_db) if e.kind == "outgoing_reversal"]
    assert len(reversals) == 2
    assert sum(e.postings.get("treasury:ethereum:USDT", 0) for e in reversals) == -30 * USDT
    state = await booking(ledger_db, confirmed.subject)
    assert (state.state, state.legs, state.outflow_base_units) == ("broadcast", [], 30 * USDT)
    assert state.in_flight_since is not None  # in flight again: reconciliation allows for it

    # Mined again in a later block, where the base fee was higher.
    again = next_update(
        reorged, sequence=7, state="confirmed", block_number=203, fee_paid_base_units=SWEEP_FEE + 7
    )
    await deliver_outgoing(ledger_db, again, registry)

    balances = await account_balances(ledger_db)
    assert balances[f"asset:ethereum:USDT:{deposit}"] == 0
    assert balances["treasury:ethereum:USDT"] == 30 * USDT
    assert balances["expense:network_fees:ethereum"] == SWEEP_FEE + 7
    assert await posting_sums(ledger_db) == balances
    numbers = [e.booking_no for e in await entries(ledger_db) if e.transfer_id == again.subject]
    assert numbers == [1, 2, 3, 4, 5, 6]
    assert (await booking(ledger_db, again.subject)).in_flight_since is None


async def test_a_sweep_reverted_on_chain_books_only_its_gas(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    deposit = evm_address()
    await paid_intent(ledger_db, deposit, 12 * USDT)
    reverted = sweep_of(
        deposit,
        evm_address(),
        12 * USDT,
        sequence=5,
        state="failed",
        receipt_status="reverted",
        failure_reason="execution reverted",
    )

    await deliver_outgoing(ledger_db, reverted, registry)

    balances = await account_balances(ledger_db)
    assert balances[f"asset:ethereum:USDT:{deposit}"] == 12 * USDT  # the tokens never left
    assert "treasury:ethereum:USDT" not in balances
    assert balances["expense:network_fees:ethereum"] == SWEEP_FEE
    assert balances[f"native:ethereum:ETH:{deposit}"] == -SWEEP_FEE
    [fee] = [e for e in await entries(ledger_db) if e.transfer_id == reverted.subject]
    assert fee.kind == "network_fee"


async def test_a_tron_transaction_that_expired_unmined_books_nothing(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    expired = outgoing_event(
        sequence=4,
        state="failed",
        network="tron",
        source_address="T" + "D" * 33,
        destination_address="T" + "R" * 33,
        token_contract="TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
        tx_hash="ab" * 32,
        block_number=None,
        block_hash=None,
        receipt_status=None,
        gas_used=None,
        fee_paid_base_units=None,
        failure_reason="expired",
    )

    await deliver_outgoing(ledger_db, expired, registry)

    assert await entries(ledger_db) == []
    assert (await booking(ledger_db, expired.subject)).state == "failed"


async def test_tron_fee_wallet_operations_book_their_fees_and_stake(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    fee_wallet, deposit = "T" + "F" * 33, "T" + "D" * 33
    common: dict[str, object] = {
        "network": "tron",
        "source_address": fee_wallet,
        "asset": "TRX",
        "token_contract": None,
        "decimals": 6,
        "gas_used": None,
        "bandwidth_used": 280,
        "tx_hash": "cd" * 32,
    }
    stake = outgoing_event(
        sequence=5,
        purpose="stake",
        destination_address=None,
        amount_base_units=7_000 * 10**6,
        fee_paid_base_units=0,
        **common,
    )
    delegation = outgoing_event(
        sequence=5,
        purpose="resource_delegation",
        destination_address=deposit,
        amount_base_units=6_700 * 10**6,
        fee_paid_base_units=280_000,
        **common,
    )
    for event in (stake, delegation):
        await deliver_outgoing(ledger_db, event, registry)

    balances = await account_balances(ledger_db)
    assert balances == {
        f"native:tron:TRX:{fee_wallet}": -(7_000 * 10**6) - 280_000,
        f"staked:tron:TRX:{fee_wallet}": 7_000 * 10**6,
        "expense:network_fees:tron": 280_000,
    }


async def test_a_purpose_the_ledger_cannot_book_is_refused_whole(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    unknown = outgoing_event(sequence=5, purpose="airdrop", reference="pi_123")

    with pytest.raises(UnbookableTransfer) as refused:
        await deliver_outgoing(ledger_db, unknown, registry)

    assert refused.value.param == "purpose"
    assert await entries(ledger_db) == []
    async with ledger_db.sessions() as session:
        assert await session.get(OutgoingBooking, unknown.subject) is None  # rolled back


async def test_an_update_that_changes_what_a_transfer_is_is_refused(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    deposit = evm_address()
    await paid_intent(ledger_db, deposit, 5 * USDT)
    sent = sweep_of(deposit, evm_address(), 5 * USDT, sequence=4, state="broadcast")
    await deliver_outgoing(ledger_db, sent, registry)
    elsewhere = next_update(sent, sequence=5, state="confirmed", source_address=evm_address())

    with pytest.raises(UnbookableTransfer) as refused:
        await deliver_outgoing(ledger_db, elsewhere, registry)

    assert refused.value.param == "source_address"
    assert [e for e in await entries(ledger_db) if e.transfer_id == sent.subject] == []
    assert (await booking(ledger_db, sent.subject)).version == 4


async def test_updates_published_on_the_bus_are_booked_once(
    ledger_db: Database, registry: AssetRegistry, bus_factory: BusFactory
) -> None:
    reconciler = await bus_factory(service="reconciler")
    await start_consumers(reconciler, ledger_db, registry)
    gateway = await bus_factory(service="test-gateway")
    deposit = evm_address()
    await paid_intent(ledger_db, deposit, 7 * USDT)
    sent = sweep_of(deposit, evm_address(), 7 * USDT, sequence=4, state="broadcast")
    done = next_update(sent, sequence=5, state="confirmed")

    # Out of order and twice: the confirmation, its redelivery, then the older broadcast.
    await gateway.publish([done, done, sent])

    async def both_handled() -> bool:
        async with ledger_db.sessions() as session:
            claimed = await session.scalars(
                select(InboxMessage.event_id).where(InboxMessage.consumer == OUTGOING_CONSUMER)
            )
            return set(claimed) == {done.id, sent.id}

    await eventually(both_handled, timeout=20)
    assert (await booking(ledger_db, done.subject)).version == 5
    balances = await account_balances(ledger_db)
    assert balances[f"asset:ethereum:USDT:{deposit}"] == 0
    assert balances["treasury:ethereum:USDT"] == 7 * USDT
    assert len([e for e in await entries(ledger_db) if e.transfer_id == done.subject]) == 2


async def test_a_sweep_canceled_after_signing_and_mined_all_the_same_is_booked(
    ledger_db: Database, registry: AssetRegistry
) -> None:
    """`canceling` (canceled after signing, still watched): nothing booked, but in flight
    for the reconciliation (the signed bytes may be mined); mined all the same, booked."""
    deposit, treasury = evm_address(), evm_address()
    await paid_intent(ledger_db, deposit, 12 * USDT)
    canceling = sweep_of(
        deposit,
        treasury,
        12 * USDT,
        sequence=4,
        state="canceling",
        previous_state="signed",
        block_number=None,
        block_hash=None,
        receipt_status=None,
        gas_used=None,
        fee_paid_base_units=None,
    )
    await deliver_outgoing(ledger_db, canceling, registry)
    state = await booking(ledger_db, canceling.subject)
    assert (state.state, state.legs, state.outflow_base_units) == ("canceling", [], 12 * USDT)
    assert state.in_flight_since is not None
    balances = await account_balances(ledger_db)
    assert balances[f"asset:ethereum:USDT:{deposit}"] == 12 * USDT

    mined = next_update(
        canceling,
        sequence=6,
        state="confirmed",
        previous_state="canceling",
        block_number=210,
        fee_paid_base_units=SWEEP_FEE,
        gas_used=41_234,
        receipt_status="success",
    )
    await deliver_outgoing(ledger_db, mined, registry)
    balances = await account_balances(ledger_db)
    assert balances[f"asset:ethereum:USDT:{deposit}"] == 0
    assert balances["treasury:ethereum:USDT"] == 12 * USDT
    assert (await booking(ledger_db, mined.subject)).in_flight_since is None
