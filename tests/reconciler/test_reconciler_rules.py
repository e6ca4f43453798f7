"""The booking rules and the reconciliation verdict as pure functions: a table of cases,
and properties over random histories of snapshots."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stablegate_reconciler.ledger.rules import (
    Action,
    ActionKind,
    BookingState,
    Posting,
    SnapshotTransfer,
    UnbalancedEntry,
    booking_actions,
    check_balanced,
    transfer_postings,
)
from stablegate_reconciler.reconciliation.chain import confirmed_block
from stablegate_reconciler.reconciliation.rules import verdict

PI = "pi_1"


def booked(tid: str, amount: int = 5, intent: str = PI) -> BookingState:
    return BookingState(tid, intent, True, amount)


def unbooked(tid: str, amount: int = 5, intent: str = PI) -> BookingState:
    return BookingState(tid, intent, False, amount)


@pytest.mark.parametrize(
    ("listed", "states", "expected"),
    [
        pytest.param(
            [SnapshotTransfer("t1", 5, "confirmed")],
            {},
            [Action("t1", "book", 5)],
            id="new-confirmed",
        ),
        pytest.param([SnapshotTransfer("t1", 5, "pending")], {}, [], id="pending"),
        pytest.param([SnapshotTransfer("t1", 5, "reverted")], {}, [], id="reverted-never-booked"),
        pytest.param(
            [SnapshotTransfer("t1", 5, "confirmed")], {"t1": booked("t1")}, [], id="already-booked"
        ),
        pytest.param(
            [SnapshotTransfer("t1", 5, "reverted")],
            {"t1": booked("t1", 5)},
            [Action("t1", "reverse", 5)],
            id="reverted",
        ),
        pytest.param(
            [SnapshotTransfer("t1", 5, "pending")],
            {"t1": booked("t1", 5)},
            [Action("t1", "reverse", 5)],
            id="back-to-pending",
        ),
        pytest.param([], {"t1": booked("t1", 5)}, [Action("t1", "reverse", 5)], id="gone"),
        pytest.param([], {"t1": unbooked("t1")}, [], id="gone-already-reversed"),
        pytest.param(
            [SnapshotTransfer("t1", 5, "confirmed")],
            {"t1": unbooked("t1")},
            [Action("t1", "book", 5)],
            id="confirmed-again",
        ),
        pytest.param(
            [SnapshotTransfer("t1", 5, "reverted")],
            {"t1": booked("t1", 5, intent="pi_other")},
            [],
            id="booked-by-another-intent",
        ),
        pytest.param([SnapshotTransfer("t1", 0, "confirmed")], {}, [], id="zero-value"),
        pytest.param(
            [SnapshotTransfer("t2", 2, "confirmed"), SnapshotTransfer("t1", 1, "confirmed")],
            {"t3": booked("t3", 3)},
            [Action("t1", "book", 1), Action("t2", "book", 2), Action("t3", "reverse", 3)],
            id="ordered-by-transfer",
        ),
    ],
)
def test_booking_actions(
    listed: list[SnapshotTransfer], states: dict[str, BookingState], expected: list[Action]
) -> None:
    assert booking_actions(PI, listed, states) == expected


def apply(states: dict[str, BookingState], actions: list[Action]) -> dict[str, BookingState]:
    """What the ledger's writer does with the actions (the model the property checks)."""
    after = dict(states)
    for action in actions:
        after[action.transfer_id] = BookingState(
            action.transfer_id, PI, action.kind == "book", action.amount_base_units
        )
    return after


amounts = st.integers(min_value=1, max_value=10**30)
snapshots = st.lists(
    st.dictionaries(
        st.sampled_from(["t1", "t2", "t3"]),
        st.sampled_from(["pending", "confirmed", "reverted"]),
    ),
    min_size=1,
    max_size=12,
)


@given(history=snapshots, amount=amounts)
def test_after_any_history_exactly_the_confirmed_transfers_are_booked(
    history: list[dict[str, str]], amount: int
) -> None:
    states: dict[str, BookingState] = {}
    net: dict[str, int] = {}
    for snapshot in history:
        listed = [SnapshotTransfer(t, amount, s) for t, s in sorted(snapshot.items())]
        actions = booking_actions(PI, listed, states)
        for action in actions:
            sign = 1 if action.kind == "book" else -1
            net[action.transfer_id] = net.get(action.transfer_id, 0) + sign * amount
        states = apply(states, actions)
        # Applying the same snapshot again (a redelivery) asks for nothing.
        assert booking_actions(PI, listed, states) == []
    last = history[-1]
    for tid in ("t1", "t2", "t3"):
        expected = amount if last.get(tid) == "confirmed" else 0
        assert net.get(tid, 0) == expected


KINDS: list[ActionKind] = ["book", "reverse"]


@given(amount=amounts, kind=st.sampled_from(KINDS))
def test_transfer_postings_balance(amount: int, kind: ActionKind) -> None:
    postings = transfer_postings(
        Action("t1", kind, amount), asset_account="asset:a", liability_account="liability:m"
    )
    assert sum(p.amount_base_units for p in postings) == 0
    asset = next(p for p in postings if p.account_code == "asset:a")
    assert asset.amount_base_units == (amount if kind == "book" else -amount)


@pytest.mark.parametrize(
    "postings",
    [
        [Posting("a", 5), Posting("b", -4)],
        [Posting("a", 5)],
        [],
        [Posting("a", 0), Posting("b", 0)],
    ],
)
def test_check_balanced_refuses(postings: list[Posting]) -> None:
    with pytest.raises(UnbalancedEntry) as info:
        check_balanced(postings)
    assert info.value.code == "unbalanced_entry"
    assert info.value.param == "postings"


@pytest.mark.parametrize(
    ("ledger", "chain", "already_open", "expected"),
    [
        (5, 5, False, "agree"),
        (5, 5, True, "resolve"),
        (5, 7, False, "open"),
        (5, 7, True, "still_open"),
        (0, 7, False, "open"),
        (7, 0, True, "still_open"),
    ],
)
def test_verdict(ledger: int, chain: int, already_open: bool, expected: str) -> None:
    assert verdict(ledger=ledger, chain=chain, already_open=already_open) == expected


@pytest.mark.parametrize(
    ("head", "confirmations", "block"),
    [(100, 12, 89), (100, 1, 100), (5, 12, 0), (12, 12, 1)],
)
def test_confirmed_block(head: int, confirmations: int, block: int) -> None:
    assert confirmed_block(head, confirmations) == block
