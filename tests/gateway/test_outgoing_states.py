"""The outgoing-transfer state machine: every (state, event) pair against a table written
out here by hand, properties over random event sequences, and the derived batch status."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stablegate_gateway.outgoing.repository import batch_status
from stablegate_gateway.outgoing.states import (
    IN_FLIGHT,
    TERMINAL,
    InvalidOutgoingTransition,
    OutgoingEvent,
    OutgoingState,
    can,
    transition,
)

S = OutgoingState
E = OutgoingEvent

# Every allowed move, spelled out independently of states.py; everything else is refused.
ALLOWED = {
    (S.PLANNED, E.REQUEST_ISSUED): S.AWAITING_SIGNATURE,
    (S.PLANNED, E.CANCELED): S.CANCELED,
    (S.PLANNED, E.DEPENDENCY_FAILED): S.CANCELED,
    (S.AWAITING_SIGNATURE, E.SIGNATURE_ACCEPTED): S.SIGNED,
    (S.AWAITING_SIGNATURE, E.EXPIRED): S.FAILED,
    (S.PLANNED, E.SUPERSEDED): S.CANCELED,
    # The signer may already have signed: not terminal until it provably cannot be mined.
    (S.AWAITING_SIGNATURE, E.CANCELED): S.CANCELING,
    (S.AWAITING_SIGNATURE, E.DEPENDENCY_FAILED): S.CANCELING,
    (S.AWAITING_SIGNATURE, E.SUPERSEDED): S.CANCELED,
    (S.SIGNED, E.BROADCAST_SENT): S.BROADCAST,
    (S.SIGNED, E.EXPIRED): S.FAILED,
    (S.SIGNED, E.CANCELED): S.CANCELING,
    (S.SIGNED, E.DEPENDENCY_FAILED): S.CANCELING,
    (S.SIGNED, E.SUPERSEDED): S.REPLACED,
    (S.BROADCAST, E.BROADCAST_SENT): S.BROADCAST,
    (S.BROADCAST, E.CONFIRMED): S.CONFIRMED,
    (S.BROADCAST, E.REVERTED): S.FAILED,
    (S.BROADCAST, E.EXPIRED): S.FAILED,
    (S.BROADCAST, E.SUPERSEDED): S.REPLACED,
    (S.CONFIRMED, E.REORGED_OUT): S.BROADCAST,
    (S.FAILED, E.REORGED_OUT): S.BROADCAST,
    # Mined from canceling (never broadcast by us), then reorged out: watched, not sent.
    (S.CONFIRMED, E.REORGED_OUT_CANCELED): S.CANCELING,
    (S.FAILED, E.REORGED_OUT_CANCELED): S.CANCELING,
    (S.CANCELING, E.EXPIRED): S.CANCELED,
    (S.CANCELING, E.SUPERSEDED): S.CANCELED,
    (S.CANCELING, E.CONFIRMED): S.CONFIRMED,
    (S.CANCELING, E.REVERTED): S.FAILED,
    (S.REPLACED, E.FOUND_MINED): S.BROADCAST,
    (S.FAILED, E.FOUND_MINED): S.BROADCAST,
    (S.REPLACED, E.REINSTATED): S.BROADCAST,
    (S.CANCELED, E.REINSTATED): S.CANCELING,
    # Settled canceled too early: mined after all, booked through canceling.
    (S.CANCELED, E.FOUND_MINED): S.CANCELING,
}
PAIRS = list(itertools.product(S, E))


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_every_pair(state: OutgoingState, event: OutgoingEvent) -> None:
    expected = ALLOWED.get((state, event))
    assert can(state, event) == (expected is not None)
    if expected is None:
        with pytest.raises(InvalidOutgoingTransition) as info:
            transition(state, event)
        assert info.value.state == state
        assert info.value.event == event
        assert info.value.code == "invalid_state"
    else:
        assert transition(state, event) == expected


def _run(events: list[OutgoingEvent]) -> list[OutgoingState]:
    """The states visited from `planned`, skipping events refused where they come, and
    those the caller never emits (its preconditions, which `repository.apply_event` and
    the consumers enforce):
    - a reorg only for a transfer in a block (the last move was CONFIRMED or REVERTED:
      `failed` by expiry takes none); REORGED_OUT for one the gateway broadcast,
      REORGED_OUT_CANCELED for one canceled before that (mined from canceling);
    - FOUND_MINED and REINSTATED need a hash: a transfer that was signed; FOUND_MINED of a
      failed one only when it failed unmined (expired); REINSTATED of a canceled one only
      after it was canceling."""
    state = S.PLANNED
    visited = [state]
    last: OutgoingEvent | None = None
    for event in events:
        in_block = last in (E.CONFIRMED, E.REVERTED)
        if event in (E.REORGED_OUT, E.REORGED_OUT_CANCELED) and not in_block:
            continue
        canceled_unsent = S.CANCELING in visited and S.BROADCAST not in visited
        if event is E.REORGED_OUT and canceled_unsent:
            continue
        if event is E.REORGED_OUT_CANCELED and not canceled_unsent:
            continue
        if event in (E.FOUND_MINED, E.REINSTATED) and S.SIGNED not in visited:
            continue
        if event is E.FOUND_MINED and state is S.FAILED and last is not E.EXPIRED:
            continue
        if event is E.REINSTATED and state is S.CANCELED and S.CANCELING not in visited:
            continue
        if can(state, event):
            state = transition(state, event)
            visited.append(state)
            last = event
    return visited


@given(st.lists(st.sampled_from(list(E)), max_size=40))
def test_a_terminal_state_is_left_only_when_the_chain_says_so(
    events: list[OutgoingEvent],
) -> None:
    """A reorg, a transaction found mined after all, or the reorg of the one that took
    its nonce: nothing a person or a timer does reopens a terminal transfer."""
    state = S.PLANNED
    for event in events:
        if not can(state, event):
            continue
        after = transition(state, event)
        if state in TERMINAL and after != state:
            assert event in (E.REORGED_OUT, E.REORGED_OUT_CANCELED, E.FOUND_MINED, E.REINSTATED)
            if event is E.REORGED_OUT:
                assert state in (S.CONFIRMED, S.FAILED)
            if event is E.REORGED_OUT_CANCELED:
                assert (state, after) in ((S.CONFIRMED, S.CANCELING), (S.FAILED, S.CANCELING))
            if event is E.FOUND_MINED:
                assert (state, after) in (
                    (S.REPLACED, S.BROADCAST),
                    (S.FAILED, S.BROADCAST),
                    (S.CANCELED, S.CANCELING),
                )
            if event is E.REINSTATED:
                assert (state, after) in ((S.REPLACED, S.BROADCAST), (S.CANCELED, S.CANCELING))
        state = after


@given(st.lists(st.sampled_from(list(E)), max_size=40))
def test_a_cancel_after_a_signature_could_exist_is_not_terminal_at_once(
    events: list[OutgoingEvent],
) -> None:
    """Signed bytes may exist from `awaiting_signature` on: a cancel goes through
    `canceling` (watched, in flight), which the gateway never broadcasts. Straight to
    `canceled` only when another confirmed transaction took its nonce (unminable)."""
    state = S.PLANNED
    for event in events:
        if not can(state, event):
            continue
        after = transition(state, event)
        if state in (S.AWAITING_SIGNATURE, S.SIGNED) and event in (
            E.CANCELED,
            E.DEPENDENCY_FAILED,
        ):
            assert after is S.CANCELING
        if state in (S.AWAITING_SIGNATURE, S.SIGNED) and after is S.CANCELED:
            assert event is E.SUPERSEDED
        if state is S.CANCELING:
            assert after in (S.CANCELED, S.CONFIRMED, S.FAILED)
            assert event is not E.BROADCAST_SENT
        state = after
    assert S.CANCELING not in TERMINAL
    assert S.CANCELING in IN_FLIGHT


@given(st.lists(st.sampled_from(list(E)), max_size=40))
def test_nothing_is_broadcast_unsigned_and_nothing_comes_back_from_cancel(
    events: list[OutgoingEvent],
) -> None:
    visited = _run(events)
    for before, after in itertools.pairwise(visited):
        if after is S.BROADCAST:
            assert before in (S.SIGNED, S.BROADCAST, S.CONFIRMED, S.FAILED, S.REPLACED)
        if before is S.CANCELED:  # only back to watching, only after canceling
            assert after is S.CANCELING
    if S.BROADCAST in visited:
        assert S.SIGNED in visited[: visited.index(S.BROADCAST)]
    # A canceled transfer was never broadcast.
    if visited[-1] is S.CANCELED:
        assert S.BROADCAST not in visited
    # Once canceling (never sent by us), nothing the chain says makes it broadcast.
    if S.CANCELING in visited:
        assert S.BROADCAST not in visited[visited.index(S.CANCELING) :]


def test_in_flight_is_what_may_be_on_the_network() -> None:
    assert {S.SIGNED, S.BROADCAST, S.CANCELING} == IN_FLIGHT
    assert not IN_FLIGHT & TERMINAL


@pytest.mark.parametrize(
    ("states", "status"),
    [
        ([S.PLANNED, S.PLANNED], "planned"),
        ([S.AWAITING_SIGNATURE, S.AWAITING_SIGNATURE], "awaiting_signature"),
        ([S.SIGNED, S.SIGNED], "signed"),
        ([S.BROADCAST, S.SIGNED], "broadcasting"),
        ([S.CONFIRMED, S.SIGNED], "broadcasting"),
        ([S.CONFIRMED, S.BROADCAST], "broadcasting"),
        ([S.CONFIRMED, S.CONFIRMED], "completed"),
        ([S.CONFIRMED, S.REPLACED], "completed"),
        ([S.FAILED, S.CANCELED], "failed"),
        ([S.CONFIRMED, S.FAILED], "failed"),
        ([S.CANCELED, S.CANCELED], "canceled"),
        ([S.CANCELING, S.CANCELED], "canceling"),
        ([S.CANCELING, S.CONFIRMED], "canceling"),
        ([], "planned"),
    ],
)
def test_batch_status(states: list[OutgoingState], status: str) -> None:
    assert batch_status(states) == status
    assert batch_status([s.value for s in states]) == status
