"""Properties of the payment-intent state machine over random histories, checked
against a reference bookkeeping of the transfers that is independent of the machine:
credited never exceeds received, the status agrees with the amounts, applying then
reverting any transfer (counted or misdirected) restores the earlier state exactly, and
a resolution is final."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from stablegate_common.core.errors import InvalidState
from stablegate_gateway.core.lifecycle import (
    Cancel,
    Expire,
    IntentState,
    MisdirectedTransfer,
    MisdirectedTransferReverted,
    Misdirection,
    Resolution,
    Resolve,
    Status,
    TransferConfirmed,
    TransferReverted,
    TransferSeen,
    transition,
)


@dataclass
class Model:
    pending: list[int] = field(default_factory=list)
    confirmed: list[int] = field(default_factory=list)
    misdirected: dict[Misdirection, int] = field(
        default_factory=lambda: dict.fromkeys(Misdirection, 0)
    )


Op = tuple[str, int]
KINDS = [
    "seen",
    "confirm",
    "confirm_unseen",
    "revert",
    "misdirected",
    "misdirected_revert",
    "expire",
    "cancel",
    "resolve",
]
ops = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(min_value=1, max_value=150)), max_size=25
)
dues = st.integers(min_value=1, max_value=300)
tolerances = st.integers(min_value=0, max_value=40)


def apply_op(state: IntentState, model: Model, op: Op) -> IntentState:
    """Apply one operation valid for the model's transfers; return the new state."""
    kind, number = op
    misdirection = list(Misdirection)[number % 2]
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
    if kind == "misdirected":
        model.misdirected[misdirection] += 1
        return transition(state, MisdirectedTransfer(misdirection))
    if kind == "misdirected_revert" and model.misdirected[misdirection]:
        model.misdirected[misdirection] -= 1
        return transition(state, MisdirectedTransferReverted(misdirection))
    if kind == "expire":
        return transition(state, Expire())
    if kind in ("cancel", "resolve"):
        event = Cancel() if kind == "cancel" else Resolve(list(Resolution)[number % 2])
        try:
            return transition(state, event)
        except InvalidState:
            return state
    return state


def history(operations: list[Op], due: int, tolerance: int = 0) -> tuple[IntentState, Model]:
    state, model = IntentState(amount_due=due, tolerance=tolerance), Model()
    for op in operations:
        state = apply_op(state, model, op)
    return state, model


@settings(max_examples=400)
@given(operations=ops, due=dues, tolerance=tolerances)
def test_credited_never_exceeds_received_and_amounts_follow_the_transfers(
    operations: list[Op], due: int, tolerance: int
) -> None:
    state, model = history(operations, due, tolerance)
    assert state.pending == sum(model.pending)
    assert state.confirmed == sum(model.confirmed)
    assert 0 <= state.confirmed <= state.received
    assert state.wrong_asset == model.misdirected[Misdirection.WRONG_ASSET]
    assert state.wrong_network == model.misdirected[Misdirection.WRONG_NETWORK]
    assert state.remaining == max(due - state.confirmed, 0)


@settings(max_examples=400)
@given(operations=ops, due=dues, tolerance=tolerances)
def test_the_status_agrees_with_the_amounts(operations: list[Op], due: int, tolerance: int) -> None:
    state, _ = history(operations, due, tolerance)
    if state.resolution is not None:
        return  # a person's decision, checked below
    ended = state.expired or state.canceled
    threshold = max(due - tolerance, 1)
    if state.status == Status.PAID:
        assert state.confirmed >= threshold
    if state.confirmed >= threshold and not ended:
        assert state.status == Status.PAID
    if state.status != Status.PAID:
        assert (state.status == Status.CONFIRMING) == (state.pending > 0)
    misdirected = state.wrong_asset + state.wrong_network > 0
    if state.received == 0 and not misdirected:
        assert state.status in {Status.AWAITING_PAYMENT, Status.EXPIRED, Status.CANCELED}
    if state.status == Status.CANCELED:
        # Only before any funds (a voided intent is resolved, checked elsewhere).
        assert state.received == 0
        assert not misdirected
    if state.exception == "overpaid":
        assert state.confirmed > due


@settings(max_examples=400)
@given(
    operations=ops,
    due=dues,
    tolerance=tolerances,
    amount=st.integers(min_value=1, max_value=400),
    how=st.sampled_from(["seen", "confirmed", "wrong_asset", "wrong_network"]),
)
def test_applying_then_reverting_a_transfer_restores_the_earlier_state(
    operations: list[Op], due: int, tolerance: int, amount: int, how: str
) -> None:
    before, _ = history(operations, due, tolerance)
    if how == "seen":
        after = transition(before, TransferSeen(amount))
        restored = transition(after, TransferReverted(amount, was_confirmed=False))
    elif how == "confirmed":
        after = transition(before, TransferConfirmed(amount, was_seen=False))
        restored = transition(after, TransferReverted(amount, was_confirmed=True))
    else:
        kind = Misdirection(how)
        after = transition(before, MisdirectedTransfer(kind))
        restored = transition(after, MisdirectedTransferReverted(kind))
    assert (restored.status, restored.exception) == (before.status, before.exception)
    assert (restored.pending, restored.confirmed) == (before.pending, before.confirmed)
    assert restored == before


@settings(max_examples=200)
@given(before_ops=ops, after_ops=ops, due=dues, action=st.sampled_from(list(Resolution)))
def test_a_resolution_is_final(
    before_ops: list[Op], after_ops: list[Op], due: int, action: Resolution
) -> None:
    state, model = history(before_ops, due)
    try:
        state = transition(state, Resolve(action))
    except InvalidState:
        assert state.status != Status.REQUIRES_ACTION
        return
    decided = (state.status, state.exception)
    assert decided[0] == (Status.PAID if action is Resolution.MARK_PAID else Status.CANCELED)
    for op in after_ops:
        state = apply_op(state, model, op)
    assert (state.status, state.exception) == decided


@settings(max_examples=200)
@given(operations=ops, due=dues, tolerance=tolerances)
def test_seen_then_confirmed_equals_confirmed_unseen(
    operations: list[Op], due: int, tolerance: int
) -> None:
    """A confirmation we hear of first counts as both, as if we had seen it before."""
    before, _ = history(operations, due, tolerance)
    two_steps = transition(transition(before, TransferSeen(7)), TransferConfirmed(7))
    one_step = transition(before, TransferConfirmed(7, was_seen=False))
    assert (two_steps.status, two_steps.exception) == (one_step.status, one_step.exception)
    assert (two_steps.pending, two_steps.confirmed) == (one_step.pending, one_step.confirmed)


@settings(max_examples=400)
@given(
    operations=ops,
    due=dues,
    tolerance=tolerances,
    amount=st.integers(min_value=1, max_value=400),
    in_time=st.booleans(),
)
def test_when_a_mined_transfer_is_processed_does_not_decide_whether_it_was_in_time(
    operations: list[Op], due: int, tolerance: int, amount: int, in_time: bool
) -> None:
    """Chain time decides: a transfer heard of before or after the expiry is processed
    leaves the intent where the other order does."""
    before, _ = history(operations, due, tolerance)
    transfer = TransferConfirmed(amount, was_seen=False, mined_in_time=in_time)
    heard_first = transition(transition(before, transfer), Expire())
    expired_first = transition(transition(before, Expire()), transfer)
    assert (heard_first.status, heard_first.exception) == (
        expired_first.status,
        expired_first.exception,
    )
    assert (heard_first.pending, heard_first.confirmed) == (
        expired_first.pending,
        expired_first.confirmed,
    )
