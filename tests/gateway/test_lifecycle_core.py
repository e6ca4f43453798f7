"""The payment-intent state machine (pure core): every (status, event) pair in a table,
then properties over random reachable histories checked against a reference model."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stablegate_common.core.errors import InvalidState
from stablegate_gateway.core.lifecycle import (
    Cancel,
    Expire,
    IntentEvent,
    IntentState,
    Status,
    TransferConfirmed,
    TransferReverted,
    TransferSeen,
    transition,
)

DUE = 100


def run(*events: IntentEvent) -> IntentState:
    state = IntentState(amount_due=DUE)
    for event in events:
        state = transition(state, event)
    return state


# One representative state per status, built only through the public transition.
STATES: dict[str, IntentState] = {
    "awaiting_payment": run(),
    "confirming": run(TransferSeen(40)),
    "partially_paid": run(TransferSeen(40), TransferConfirmed(40)),
    "paid": run(TransferSeen(100), TransferConfirmed(100)),
    "expired": run(Expire()),
    "canceled": run(Cancel()),
    "requires_action": run(TransferConfirmed(40, was_seen=False), Expire()),
    "confirming_after_expiry": run(TransferSeen(40), Expire()),
}


def test_the_representative_states_have_the_status_they_are_named_after() -> None:
    for name, state in STATES.items():
        assert state.status == name.removesuffix("_after_expiry"), name


# (start, event, status, exception, pending, confirmed); None for "raises InvalidState".
Row = tuple[str, IntentEvent, str | None, str | None, int, int]
TABLE: list[Row] = [
    # A transfer is seen (not final yet).
    ("awaiting_payment", TransferSeen(30), "confirming", None, 30, 0),
    ("confirming", TransferSeen(30), "confirming", None, 70, 0),
    ("partially_paid", TransferSeen(30), "confirming", None, 30, 40),
    ("paid", TransferSeen(30), "paid", None, 30, 100),
    ("expired", TransferSeen(30), "confirming", None, 30, 0),
    ("canceled", TransferSeen(30), "confirming", None, 30, 0),
    ("requires_action", TransferSeen(30), "confirming", None, 30, 40),
    # A seen transfer becomes final.
    ("confirming", TransferConfirmed(40), "partially_paid", None, 0, 40),
    ("confirming", TransferConfirmed(30), "confirming", None, 10, 30),
    ("confirming_after_expiry", TransferConfirmed(40), "requires_action", "underpaid", 0, 40),
    ("awaiting_payment", TransferConfirmed(30), None, None, 0, 0),
    # The first we hear of a transfer is its confirmation: seen and final at once.
    ("awaiting_payment", TransferConfirmed(30, was_seen=False), "partially_paid", None, 0, 30),
    ("awaiting_payment", TransferConfirmed(100, was_seen=False), "paid", None, 0, 100),
    ("awaiting_payment", TransferConfirmed(130, was_seen=False), "paid", "overpaid", 0, 130),
    ("confirming", TransferConfirmed(30, was_seen=False), "confirming", None, 40, 30),
    ("partially_paid", TransferConfirmed(30, was_seen=False), "partially_paid", None, 0, 70),
    ("partially_paid", TransferConfirmed(60, was_seen=False), "paid", None, 0, 100),
    ("paid", TransferConfirmed(1, was_seen=False), "paid", "overpaid", 0, 101),
    ("expired", TransferConfirmed(30, was_seen=False), "requires_action", "paid_late", 0, 30),
    ("expired", TransferConfirmed(100, was_seen=False), "paid", None, 0, 100),
    ("canceled", TransferConfirmed(30, was_seen=False), "requires_action", "paid_late", 0, 30),
    (
        "requires_action",
        TransferConfirmed(30, was_seen=False),
        "requires_action",
        "underpaid",
        0,
        70,
    ),
    ("requires_action", TransferConfirmed(60, was_seen=False), "paid", None, 0, 100),
    # A reorg removes a transfer.
    ("confirming", TransferReverted(40, was_confirmed=False), "awaiting_payment", None, 0, 0),
    (
        "partially_paid",
        TransferReverted(40, was_confirmed=True),
        "awaiting_payment",
        None,
        0,
        40 - 40,
    ),
    ("paid", TransferReverted(100, was_confirmed=True), "awaiting_payment", None, 0, 0),
    ("paid", TransferReverted(40, was_confirmed=True), "partially_paid", None, 0, 60),
    ("requires_action", TransferReverted(40, was_confirmed=True), "expired", None, 0, 0),
    ("confirming_after_expiry", TransferReverted(40, was_confirmed=False), "expired", None, 0, 0),
    ("awaiting_payment", TransferReverted(10, was_confirmed=False), None, None, 0, 0),
    ("awaiting_payment", TransferReverted(10, was_confirmed=True), None, None, 0, 0),
    ("confirming", TransferReverted(50, was_confirmed=False), None, None, 0, 0),
    ("expired", TransferReverted(10, was_confirmed=True), None, None, 0, 0),
    ("canceled", TransferReverted(10, was_confirmed=False), None, None, 0, 0),
    # Expiry.
    ("awaiting_payment", Expire(), "expired", None, 0, 0),
    ("confirming", Expire(), "confirming", None, 40, 0),
    ("partially_paid", Expire(), "requires_action", "underpaid", 0, 40),
    ("paid", Expire(), "paid", None, 0, 100),
    ("expired", Expire(), "expired", None, 0, 0),
    ("canceled", Expire(), "canceled", None, 0, 0),
    ("requires_action", Expire(), "requires_action", "underpaid", 0, 40),
    # Cancel: only while nothing was seen.
    ("awaiting_payment", Cancel(), "canceled", None, 0, 0),
    ("confirming", Cancel(), None, None, 0, 0),
    ("partially_paid", Cancel(), None, None, 0, 0),
    ("paid", Cancel(), None, None, 0, 0),
    ("expired", Cancel(), None, None, 0, 0),
    ("canceled", Cancel(), None, None, 0, 0),
    ("requires_action", Cancel(), None, None, 0, 0),
    # Amounts are positive.
    ("awaiting_payment", TransferSeen(0), None, None, 0, 0),
    ("confirming", TransferConfirmed(-1), None, None, 0, 0),
]


@pytest.mark.parametrize(
    ("start", "event", "status", "exception", "pending", "confirmed"),
    TABLE,
    ids=[f"{r[0]}-{type(r[1]).__name__}-{i}" for i, r in enumerate(TABLE)],
)
def test_transition_table(
    start: str,
    event: IntentEvent,
    status: str | None,
    exception: str | None,
    pending: int,
    confirmed: int,
) -> None:
    state = STATES[start]
    if status is None:
        with pytest.raises(InvalidState):
            transition(state, event)
        return
    after = transition(state, event)
    assert (after.status, after.exception) == (status, exception)
    assert (after.pending, after.confirmed) == (pending, confirmed)


def test_every_status_and_event_kind_is_in_the_table() -> None:
    pairs = {(start, type(event).__name__) for start, event, *_ in TABLE}
    kinds = {"TransferSeen", "TransferConfirmed", "TransferReverted", "Expire", "Cancel"}
    statuses = {s.value for s in Status}
    missing = {(s, k) for s in statuses for k in kinds} - pairs
    assert not missing


def test_a_canceled_intent_says_intent_not_cancelable() -> None:
    with pytest.raises(InvalidState) as caught:
        transition(STATES["confirming"], Cancel())
    assert caught.value.code == "intent_not_cancelable"


# -- properties over random histories -------------------------------------------------------


@dataclass
class Model:
    """A reference bookkeeping of transfers, independent of the machine under test."""

    pending: list[int] = field(default_factory=list)
    confirmed: list[int] = field(default_factory=list)


Op = tuple[str, int]

ops = st.lists(
    st.tuples(
        st.sampled_from(["seen", "confirm", "confirm_unseen", "revert", "expire", "cancel"]),
        st.integers(min_value=1, max_value=150),
    ),
    max_size=25,
)


def apply_op(state: IntentState, model: Model, op: Op) -> IntentState:
    """Apply one operation that is valid for the model's transfers; return the new state."""
    kind, number = op
    if kind == "seen":
        model.pending.append(number)
        return transition(state, TransferSeen(number))
    if kind == "confirm_unseen":
        model.confirmed.append(number)
        return transition(state, TransferConfirmed(number, was_seen=False))
    if kind == "confirm" and model.pending:
        amount = model.pending.pop(number % len(model.pending))
        model.confirmed.append(amount)
        return transition(state, TransferConfirmed(amount))
    if kind == "revert" and (model.pending or model.confirmed):
        pool = model.confirmed if number % 2 and model.confirmed else model.pending
        pool = pool or model.confirmed
        amount = pool.pop(number % len(pool))
        return transition(state, TransferReverted(amount, was_confirmed=pool is model.confirmed))
    if kind == "expire":
        return transition(state, Expire())
    if kind == "cancel":
        try:
            return transition(state, Cancel())
        except InvalidState:
            assert state.received > 0 or state.status != Status.AWAITING_PAYMENT
    return state


def history(operations: list[Op], due: int) -> tuple[IntentState, Model]:
    state, model = IntentState(amount_due=due), Model()
    for op in operations:
        state = apply_op(state, model, op)
    return state, model


@settings(max_examples=300)
@given(operations=ops, due=st.integers(min_value=1, max_value=300))
def test_amounts_follow_the_transfers_and_confirmed_never_exceeds_received(
    operations: list[Op], due: int
) -> None:
    state, model = history(operations, due)
    assert state.pending == sum(model.pending)
    assert state.confirmed == sum(model.confirmed)
    assert 0 <= state.confirmed <= state.received
    assert state.remaining == max(due - state.confirmed, 0)
    # The status agrees with the amounts.
    assert (state.status == Status.PAID) == (state.confirmed >= due)
    if state.status != Status.PAID:
        assert (state.status == Status.CONFIRMING) == (state.pending > 0)
    if state.received == 0:
        assert state.status in {Status.AWAITING_PAYMENT, Status.EXPIRED, Status.CANCELED}


@settings(max_examples=300)
@given(
    operations=ops,
    due=st.integers(min_value=1, max_value=300),
    amount=st.integers(min_value=1, max_value=400),
    final=st.booleans(),
)
def test_applying_then_reverting_a_transfer_restores_the_earlier_state(
    operations: list[Op], due: int, amount: int, final: bool
) -> None:
    before, _ = history(operations, due)
    if final:
        after = transition(before, TransferConfirmed(amount, was_seen=False))
        restored = transition(after, TransferReverted(amount, was_confirmed=True))
    else:
        after = transition(before, TransferSeen(amount))
        restored = transition(after, TransferReverted(amount, was_confirmed=False))
    assert (restored.status, restored.exception) == (before.status, before.exception)
    assert (restored.pending, restored.confirmed) == (before.pending, before.confirmed)
    assert restored == before


@settings(max_examples=200)
@given(operations=ops, due=st.integers(min_value=1, max_value=300))
def test_seen_then_confirmed_equals_confirmed_unseen(operations: list[Op], due: int) -> None:
    """A confirmation we hear of first counts as both, as if we had seen it before."""
    before, _ = history(operations, due)
    two_steps = transition(transition(before, TransferSeen(7)), TransferConfirmed(7))
    one_step = transition(before, TransferConfirmed(7, was_seen=False))
    assert (two_steps.status, two_steps.exception) == (one_step.status, one_step.exception)
    assert (two_steps.pending, two_steps.confirmed) == (one_step.pending, one_step.confirmed)
