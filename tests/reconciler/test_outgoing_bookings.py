"""The bookings of outgoing transfers and the reconciliation's allowance for them, as pure
functions: a table of what each purpose and state books, and properties over random
histories of updates (every entry balances, booking then reversing nets to zero, what
is booked always equals what the newest state calls for, a repeat changes nothing)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stablegate_reconciler.ledger.rules import (
    Leg,
    OutgoingEntry,
    OutgoingFacts,
    UnbookableTransfer,
    holding_outflow,
    legs_from_json,
    legs_to_json,
    outgoing_legs,
    rebook,
)
from stablegate_reconciler.reconciliation.rules import explained_by_outflows, verdict

DEPOSIT = "0x" + "d" * 40
FEE_WALLET = "0x" + "f" * 40
TREASURY = "0x" + "7" * 40
TRON_FEE_WALLET = "T" + "F" * 33
TRON_DEPOSIT = "T" + "D" * 33

STATES = (
    "planned",
    "awaiting_signature",
    "signed",
    "broadcast",
    "confirmed",
    "failed",
    "canceled",
    "replaced",
    "canceling",
)


def sweep(**overrides: Any) -> OutgoingFacts:
    values: dict[str, Any] = {
        "transfer_id": "ot_sweep",
        "purpose": "sweep",
        "state": "confirmed",
        "network": "ethereum",
        "native_coin": "ETH",
        "source_address": DEPOSIT,
        "destination_address": TREASURY,
        "asset": "USDT",
        "is_token": True,
        "amount_base_units": 25_000_000,
        "fee_paid_base_units": 40_000 * 2_000_000_000,
    }
    values.update(overrides)
    return OutgoingFacts(**values)


def topup(**overrides: Any) -> OutgoingFacts:
    values: dict[str, Any] = {
        "transfer_id": "ot_topup",
        "purpose": "fee_topup",
        "source_address": FEE_WALLET,
        "destination_address": DEPOSIT,
        "asset": "ETH",
        "is_token": False,
        "amount_base_units": 80_000 * 2_000_000_000,
        "fee_paid_base_units": 21_000 * 2_000_000_000,
    }
    values.update(overrides)
    return sweep(**values)


def tron(purpose: str, **overrides: Any) -> OutgoingFacts:
    values: dict[str, Any] = {
        "transfer_id": f"ot_{purpose}",
        "purpose": purpose,
        "network": "tron",
        "native_coin": "TRX",
        "source_address": TRON_FEE_WALLET,
        "destination_address": TRON_DEPOSIT,
        "asset": "TRX",
        "is_token": False,
        "amount_base_units": 6_700_000_000,
        "fee_paid_base_units": 280_000,
    }
    values.update(overrides)
    return sweep(**values)


def postings(legs: Sequence[Leg]) -> list[dict[str, int]]:
    return [{account.code: amount for account, amount in leg.postings} for leg in legs]


FEE = 40_000 * 2_000_000_000
SWEPT = 25_000_000
TOPUP_FEE = 21_000 * 2_000_000_000


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(
            sweep(),
            [
                {"treasury:ethereum:USDT": SWEPT, f"asset:ethereum:USDT:{DEPOSIT}": -SWEPT},
                {"expense:network_fees:ethereum": FEE, f"native:ethereum:ETH:{DEPOSIT}": -FEE},
            ],
            id="sweep-confirmed",
        ),
        pytest.param(
            sweep(state="failed"),
            [{"expense:network_fees:ethereum": FEE, f"native:ethereum:ETH:{DEPOSIT}": -FEE}],
            id="sweep-reverted-on-chain-books-its-gas",
        ),
        pytest.param(sweep(state="failed", fee_paid_base_units=None), [], id="failed-never-mined"),
        pytest.param(sweep(state="broadcast"), [], id="broadcast"),
        pytest.param(sweep(state="signed"), [], id="signed"),
        pytest.param(sweep(state="replaced"), [], id="replaced"),
        pytest.param(sweep(state="canceled"), [], id="canceled"),
        pytest.param(
            topup(),
            [
                {
                    f"native:ethereum:ETH:{DEPOSIT}": 160_000_000_000_000,
                    f"native:ethereum:ETH:{FEE_WALLET}": -160_000_000_000_000,
                },
                {
                    "expense:network_fees:ethereum": TOPUP_FEE,
                    f"native:ethereum:ETH:{FEE_WALLET}": -TOPUP_FEE,
                },
            ],
            id="fee-topup-confirmed",
        ),
        pytest.param(
            tron("fee_topup", amount_base_units=8_000_000, fee_paid_base_units=1_100_000),
            [
                {
                    f"native:tron:TRX:{TRON_DEPOSIT}": 8_000_000,
                    f"native:tron:TRX:{TRON_FEE_WALLET}": -8_000_000,
                },
                {  # activation of a new address: 1 TRX + 0.1 TRX bandwidth, burned
                    "expense:network_fees:tron": 1_100_000,
                    f"native:tron:TRX:{TRON_FEE_WALLET}": -1_100_000,
                },
            ],
            id="tron-topup-activating",
        ),
        pytest.param(
            tron("resource_delegation"),
            [
                {
                    "expense:network_fees:tron": 280_000,
                    f"native:tron:TRX:{TRON_FEE_WALLET}": -280_000,
                }
            ],
            id="delegation-moves-only-its-fee",
        ),
        pytest.param(
            tron("resource_undelegation", fee_paid_base_units=0),
            [],
            id="undelegation-on-staked-bandwidth-costs-nothing",
        ),
        pytest.param(
            tron("stake", destination_address=None, fee_paid_base_units=0),
            [
                {
                    f"staked:tron:TRX:{TRON_FEE_WALLET}": 6_700_000_000,
                    f"native:tron:TRX:{TRON_FEE_WALLET}": -6_700_000_000,
                }
            ],
            id="stake-freezes-coin-at-the-same-address",
        ),
        pytest.param(
            tron(
                "sweep",
                source_address=TRON_DEPOSIT,
                destination_address="T" + "R" * 33,
                asset="USDT",
                is_token=True,
                amount_base_units=9_000_000,
                fee_paid_base_units=0,
            ),
            [{"treasury:tron:USDT": 9_000_000, f"asset:tron:USDT:{TRON_DEPOSIT}": -9_000_000}],
            id="tron-sweep-on-delegated-energy-burns-nothing",
        ),
        pytest.param(sweep(amount_base_units=0, fee_paid_base_units=0), [], id="nothing-moved"),
    ],
)
def test_what_each_purpose_and_state_books(
    facts: OutgoingFacts, expected: list[dict[str, int]]
) -> None:
    legs = outgoing_legs(facts)

    assert postings(legs) == expected
    for leg in legs:
        assert sum(amount for _, amount in leg.postings) == 0


@pytest.mark.parametrize(
    ("facts", "param"),
    [
        pytest.param(sweep(fee_paid_base_units=None), "fee_paid_base_units", id="confirmed-no-fee"),
        pytest.param(sweep(purpose="refund"), "merchant_id", id="refund-without-merchant"),
        pytest.param(
            sweep(purpose="payout", state="signed"), "merchant_id", id="payout-without-merchant"
        ),
        pytest.param(sweep(purpose="airdrop"), "purpose", id="unknown-purpose"),
        pytest.param(sweep(destination_address=None), "destination_address", id="sweep-nowhere"),
    ],
)
def test_what_cannot_be_booked_is_refused_naming_the_field(
    facts: OutgoingFacts, param: str
) -> None:
    with pytest.raises(UnbookableTransfer) as refused:
        outgoing_legs(facts)
    assert refused.value.param == param


def test_a_reverted_refund_still_books_its_fee() -> None:
    legs = outgoing_legs(sweep(purpose="refund", state="failed", merchant_id="mer_1"))
    assert [leg.kind for leg in legs] == ["fee"]


def test_what_the_reconciled_holding_loses() -> None:
    assert holding_outflow(sweep(state="broadcast")) == 25_000_000
    assert holding_outflow(topup()) == 0  # native coin is not reconciled
    assert holding_outflow(tron("resource_delegation")) == 0


def test_a_reorg_reverses_exactly_what_was_booked_then_rebooks_the_new_fee() -> None:
    first = outgoing_legs(sweep())
    back = rebook(outgoing_legs(sweep(state="broadcast")), first)
    assert [e.kind for e in back] == ["outgoing_reversal", "outgoing_reversal"]
    assert net(back) == {code: -amount for code, amount in net(rebook(first, ())).items()}

    # Mined again in another block, at another base fee: out with the old, in with the new.
    again = outgoing_legs(sweep(fee_paid_base_units=FEE + 1))
    moved = rebook(again, first)
    assert [e.kind for e in moved] == [
        "outgoing_reversal",
        "outgoing_reversal",
        "outgoing_movement",
        "network_fee",
    ]
    assert net(moved) == {
        "expense:network_fees:ethereum": 1,
        f"native:ethereum:ETH:{DEPOSIT}": -1,
    }


def net(entries: Sequence[OutgoingEntry]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for entry in entries:
        for posting in entry.postings:
            total[posting.account_code] += posting.amount_base_units
    return {code: amount for code, amount in total.items() if amount}


def legs_net(legs: Sequence[Leg]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for leg in legs:
        for account, amount in leg.postings:
            total[account.code] += amount
    return {code: amount for code, amount in total.items() if amount}


FACTS = st.sampled_from(
    [
        sweep(),
        topup(),
        tron("fee_topup"),
        tron("resource_delegation"),
        tron("stake", destination_address=None),
    ]
)
UPDATES = st.lists(
    st.tuples(
        st.sampled_from(STATES),
        st.one_of(st.none(), st.integers(min_value=0, max_value=10**20)),
    ),
    min_size=1,
    max_size=12,
)


@given(base=FACTS, history=UPDATES, repeats=st.lists(st.integers(0, 11), max_size=4))
def test_any_history_leaves_what_the_newest_state_calls_for(
    base: OutgoingFacts,
    history: list[tuple[str, int | None]],
    repeats: list[int],
) -> None:
    booked: tuple[Leg, ...] = ()
    posted: list[OutgoingEntry] = []
    # A repeated update (redelivery that got past the inbox) is applied twice in a row.
    updates = list(history)
    for index in sorted(repeats, reverse=True):
        if index < len(updates):
            updates.insert(index, updates[index])
    for state, fee in updates:
        facts = replace(base, state=state, fee_paid_base_units=fee)
        if state == "confirmed" and fee is None:
            continue  # refused (test above): nothing changes
        target = outgoing_legs(facts)
        entries = rebook(target, booked)
        for entry in entries:
            assert sum(p.amount_base_units for p in entry.postings) == 0
            assert all(p.amount_base_units != 0 for p in entry.postings)
        assert rebook(target, target) == []  # the same update again: nothing
        posted.extend(entries)
        booked = legs_from_json(legs_to_json(target))  # as stored, and read back
        assert booked == target
    assert net(posted) == legs_net(booked)


@given(facts=FACTS, fee=st.integers(min_value=0, max_value=10**24))
def test_booking_then_reversing_nets_to_zero(facts: OutgoingFacts, fee: int) -> None:
    legs = outgoing_legs(replace(facts, fee_paid_base_units=fee))
    there = rebook(legs, ())
    back = rebook((), legs)
    assert net([*there, *back]) == {}
    assert len(back) == len(legs)


# --- the reconciliation's allowance ---------------------------------------------------------


@pytest.mark.parametrize(
    ("ledger", "chain", "open_", "in_flight", "ahead", "expected"),
    [
        pytest.param(10, 10, False, (10,), 0, "agree", id="not-mined-yet"),
        pytest.param(10, 0, False, (10,), 0, "pending", id="mined-not-booked"),
        pytest.param(10, 1, False, (9,), 0, "pending", id="mined-dust-left"),
        pytest.param(10, 0, False, (), 0, "open", id="gone-without-a-transfer"),
        pytest.param(10, 3, False, (10,), 0, "open", id="gone-by-another-amount"),
        pytest.param(10, 12, False, (10,), 0, "open", id="more-than-booked"),
        pytest.param(0, 10, False, (), 10, "pending", id="booked-mined-after-the-block"),
        pytest.param(0, 0, False, (), 10, "agree", id="booked-and-visible"),
        pytest.param(0, 4, False, (), 10, "open", id="booked-ahead-other-amount"),
        pytest.param(10, 0, True, (10,), 0, "resolve", id="open-then-explained"),
        pytest.param(10, 0, True, (4,), 0, "still_open", id="open-unexplained"),
        pytest.param(20, 3, False, (10, 5), 0, "open", id="neither-subset"),
        pytest.param(20, 5, False, (10, 5, 5), 0, "pending", id="a-subset"),
    ],
)
def test_reconciliation_verdict_with_outgoing_transfers(
    ledger: int,
    chain: int,
    open_: bool,
    in_flight: tuple[int, ...],
    ahead: int,
    expected: str,
) -> None:
    got = verdict(
        ledger=ledger, chain=chain, already_open=open_, in_flight=in_flight, booked_ahead=ahead
    )
    assert got == expected


@given(
    ledger=st.integers(0, 10**30),
    outflows=st.lists(st.integers(1, 10**24), max_size=20),
    gap=st.integers(-(10**24), 10**24),
)
def test_only_an_exact_sum_of_in_flight_outflows_explains_a_gap(
    ledger: int, outflows: list[int], gap: int
) -> None:
    explained = explained_by_outflows(ledger=ledger, chain=ledger - gap, outflows=outflows)
    if len(outflows) <= 12:
        sums = {0}
        for amount in outflows:
            sums |= {s + amount for s in sums}
        assert explained == (gap in sums)
    else:
        assert explained == (gap in (0, sum(outflows)))
    if not outflows:
        assert explained == (gap == 0)
