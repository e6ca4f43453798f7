"""The payment-intent state machine (pure core), against a table that covers every
(state, event) pair: one representative state per status and exception (and the
resolved and confirming-after-expiry variants), times every kind of event. Properties
over random histories are in test_lifecycle_properties.py."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from stablegate_common.core.errors import InvalidState
from stablegate_gateway.core.lifecycle import (
    Cancel,
    Expire,
    IntentEvent,
    IntentState,
    MisdirectedTransfer,
    MisdirectedTransferReverted,
    Misdirection,
    Resolution,
    Resolve,
    TransferConfirmed,
    TransferReverted,
    TransferSeen,
    UnderpaymentTolerance,
    transition,
)

DUE = 100
WA, WN = Misdirection.WRONG_ASSET, Misdirection.WRONG_NETWORK


def run(*events: IntentEvent, due: int = DUE, tolerance: int = 0) -> IntentState:
    state = IntentState(amount_due=due, tolerance=tolerance)
    for event in events:
        state = transition(state, event)
    return state


def unseen(amount: int) -> TransferConfirmed:
    return TransferConfirmed(amount, was_seen=False)


UNDERPAID = (unseen(40), Expire())

# One representative state per (status, exception), built only through `transition`.
STATES: dict[str, IntentState] = {
    "awaiting_payment": run(),
    "confirming": run(TransferSeen(40)),
    "partially_paid": run(unseen(40)),
    "paid": run(unseen(100)),
    "paid/overpaid": run(unseen(130)),
    "requires_action/underpaid": run(*UNDERPAID),
    "requires_action/paid_late": run(Expire(), unseen(40)),
    "requires_action/wrong_asset": run(MisdirectedTransfer(WA)),
    "requires_action/wrong_network": run(MisdirectedTransfer(WN)),
    "expired": run(Expire()),
    "canceled": run(Cancel()),
    "paid/underpaid (resolved)": run(*UNDERPAID, Resolve(Resolution.MARK_PAID)),
    "canceled/underpaid (resolved)": run(*UNDERPAID, Resolve(Resolution.VOID)),
    "confirming (after expiry)": run(TransferSeen(40), Expire()),
}

# Each event kind, sized from the state it meets: confirming or reverting "what is
# there" (30 when nothing is, which the machine must refuse).
EVENTS: dict[str, Callable[[IntentState], IntentEvent]] = {
    "seen": lambda s: TransferSeen(30),
    "confirmed": lambda s: TransferConfirmed(s.pending or 30),
    "confirmed_unseen": lambda s: unseen(30),
    # The chain's clock on the same event: mined before the expiry, or after it.
    "confirmed_unseen_in_time": lambda s: TransferConfirmed(30, was_seen=False, mined_in_time=True),
    "confirmed_unseen_late": lambda s: TransferConfirmed(30, was_seen=False, mined_in_time=False),
    "reverted_seen": lambda s: TransferReverted(s.pending or 30, was_confirmed=False),
    "reverted_confirmed": lambda s: TransferReverted(s.confirmed or 30, was_confirmed=True),
    "wrong_asset": lambda s: MisdirectedTransfer(WA),
    "wrong_asset_reverted": lambda s: MisdirectedTransferReverted(WA),
    "wrong_network": lambda s: MisdirectedTransfer(WN),
    "wrong_network_reverted": lambda s: MisdirectedTransferReverted(WN),
    "expire": lambda s: Expire(),
    "cancel": lambda s: Cancel(),
    "resolve_mark_paid": lambda s: Resolve(Resolution.MARK_PAID),
    "resolve_void": lambda s: Resolve(Resolution.VOID),
}

NO = "refused"  # InvalidState
NO_LATE = "requires_action/paid_late"
# Refusals common to most states: nothing to confirm, revert or resolve.
NOTHING_THERE = {
    "confirmed": NO,
    "reverted_seen": NO,
    "reverted_confirmed": NO,
    "wrong_asset_reverted": NO,
    "wrong_network_reverted": NO,
    "cancel": NO,
    "resolve_mark_paid": NO,
    "resolve_void": NO,
}

# state -> event -> "status" or "status/exception" or NO.
TABLE: dict[str, dict[str, str]] = {
    "awaiting_payment": {
        **NOTHING_THERE,
        "confirmed_unseen_in_time": "partially_paid",
        # A block younger than the expiry: the expiry has passed, the funds are late.
        "confirmed_unseen_late": "requires_action/paid_late",
        "seen": "confirming",
        "confirmed_unseen": "partially_paid",
        "wrong_asset": "requires_action/wrong_asset",
        "wrong_network": "requires_action/wrong_network",
        "expire": "expired",
        "cancel": "canceled",
    },
    "confirming": {
        **NOTHING_THERE,
        "confirmed_unseen_in_time": "confirming",
        "confirmed_unseen_late": "confirming",
        "seen": "confirming",
        "confirmed": "partially_paid",
        "confirmed_unseen": "confirming",
        "reverted_seen": "awaiting_payment",
        # A misdirected transfer does not pre-empt funds in flight: they may pay it.
        "wrong_asset": "confirming",
        "wrong_network": "confirming",
        "expire": "confirming",  # left to the transfer: it decides when it settles
    },
    "partially_paid": {
        **NOTHING_THERE,
        "confirmed_unseen_in_time": "partially_paid",
        "confirmed_unseen_late": "requires_action/underpaid",
        "seen": "confirming",
        "confirmed_unseen": "partially_paid",
        "reverted_confirmed": "awaiting_payment",
        "wrong_asset": "requires_action/wrong_asset",
        "wrong_network": "requires_action/wrong_network",
        "expire": "requires_action/underpaid",
    },
    "paid": {
        **NOTHING_THERE,
        "confirmed_unseen_in_time": "paid/overpaid",
        "confirmed_unseen_late": "paid/overpaid",
        "seen": "paid",
        "confirmed_unseen": "paid/overpaid",
        "reverted_confirmed": "awaiting_payment",
        # Paid stays paid; the exception says what else arrived.
        "wrong_asset": "paid/wrong_asset",
        "wrong_network": "paid/wrong_network",
        "expire": "paid",
    },
    "paid/overpaid": {
        **NOTHING_THERE,
        "confirmed_unseen_in_time": "paid/overpaid",
        "confirmed_unseen_late": "paid/overpaid",
        "seen": "paid/overpaid",
        "confirmed_unseen": "paid/overpaid",
        "reverted_confirmed": "awaiting_payment",
        "wrong_asset": "paid/overpaid",
        "wrong_network": "paid/overpaid",
        "expire": "paid/overpaid",
    },
    "requires_action/underpaid": {
        **NOTHING_THERE,
        "confirmed_unseen_in_time": "requires_action/underpaid",
        "confirmed_unseen_late": "requires_action/underpaid",
        "seen": "confirming",
        "confirmed_unseen": "requires_action/underpaid",
        "reverted_confirmed": "expired",
        "wrong_asset": "requires_action/wrong_asset",
        "wrong_network": "requires_action/wrong_network",
        "expire": "requires_action/underpaid",
        "resolve_mark_paid": "paid/underpaid",
        "resolve_void": "canceled/underpaid",
    },
    "requires_action/paid_late": {
        **NOTHING_THERE,
        # Funds mined before the expiry join the late ones: part was in time.
        "confirmed_unseen_in_time": "requires_action/underpaid",
        "confirmed_unseen_late": "requires_action/paid_late",
        "seen": "confirming",
        "confirmed_unseen": "requires_action/paid_late",
        "reverted_confirmed": "expired",
        "wrong_asset": "requires_action/wrong_asset",
        "wrong_network": "requires_action/wrong_network",
        "expire": "requires_action/paid_late",
        "resolve_mark_paid": "paid/paid_late",
        "resolve_void": "canceled/paid_late",
    },
    "requires_action/wrong_asset": {
        **NOTHING_THERE,
        "confirmed_unseen_in_time": "requires_action/wrong_asset",
        "confirmed_unseen_late": "requires_action/wrong_asset",
        "seen": "confirming",
        "confirmed_unseen": "requires_action/wrong_asset",
        "wrong_asset": "requires_action/wrong_asset",
        "wrong_asset_reverted": "awaiting_payment",
        "wrong_network": "requires_action/wrong_network",
        "expire": "requires_action/wrong_asset",
        "resolve_mark_paid": "paid/wrong_asset",
        "resolve_void": "canceled/wrong_asset",
    },
    "requires_action/wrong_network": {
        **NOTHING_THERE,
        "confirmed_unseen_in_time": "requires_action/wrong_network",
        "confirmed_unseen_late": "requires_action/wrong_network",
        "seen": "confirming",
        "confirmed_unseen": "requires_action/wrong_network",
        "wrong_asset": "requires_action/wrong_network",
        "wrong_network": "requires_action/wrong_network",
        "wrong_network_reverted": "awaiting_payment",
        "expire": "requires_action/wrong_network",
        "resolve_mark_paid": "paid/wrong_network",
        "resolve_void": "canceled/wrong_network",
    },
    "expired": {
        **NOTHING_THERE,
        # Mined before the expiry, heard of after it: in time (chain time decides).
        "confirmed_unseen_in_time": "requires_action/underpaid",
        "confirmed_unseen_late": "requires_action/paid_late",
        "seen": "confirming",
        "confirmed_unseen": "requires_action/paid_late",
        "wrong_asset": "requires_action/wrong_asset",
        "wrong_network": "requires_action/wrong_network",
        "expire": "expired",
    },
    "canceled": {
        **NOTHING_THERE,
        # A cancel has no chain time; the customer was told: late either way.
        "confirmed_unseen_in_time": "requires_action/paid_late",
        "confirmed_unseen_late": "requires_action/paid_late",
        "seen": "confirming",
        "confirmed_unseen": "requires_action/paid_late",
        "wrong_asset": "requires_action/wrong_asset",
        "wrong_network": "requires_action/wrong_network",
        "expire": "canceled",
    },
    # A person's decision is final: chain news moves amounts, never the status.
    "paid/underpaid (resolved)": {
        **NOTHING_THERE,
        "confirmed_unseen_in_time": "paid/underpaid",
        "confirmed_unseen_late": "paid/underpaid",
        "seen": "paid/underpaid",
        "confirmed_unseen": "paid/underpaid",
        "reverted_confirmed": "paid/underpaid",
        "wrong_asset": "paid/underpaid",
        "wrong_network": "paid/underpaid",
        "expire": "paid/underpaid",
    },
    "canceled/underpaid (resolved)": {
        **NOTHING_THERE,
        "confirmed_unseen_in_time": "canceled/underpaid",
        "confirmed_unseen_late": "canceled/underpaid",
        "seen": "canceled/underpaid",
        "confirmed_unseen": "canceled/underpaid",
        "reverted_confirmed": "canceled/underpaid",
        "wrong_asset": "canceled/underpaid",
        "wrong_network": "canceled/underpaid",
        "expire": "canceled/underpaid",
    },
    "confirming (after expiry)": {
        **NOTHING_THERE,
        "confirmed_unseen_in_time": "confirming",
        "confirmed_unseen_late": "confirming",
        "seen": "confirming",
        "confirmed": "requires_action/underpaid",
        "confirmed_unseen": "confirming",
        "reverted_seen": "expired",
        "wrong_asset": "confirming",
        "wrong_network": "confirming",
        "expire": "confirming",
    },
}

CASES = [(start, event) for start in TABLE for event in EVENTS]


def shown(state: IntentState) -> str:
    return state.status.value + (f"/{state.exception}" if state.exception else "")


def test_the_representative_states_are_what_they_are_named() -> None:
    for name, state in STATES.items():
        assert shown(state) == name.split(" (")[0], name


def test_the_table_covers_every_state_and_event() -> None:
    assert set(TABLE) == set(STATES)
    for start, row in TABLE.items():
        assert set(row) == set(EVENTS), start


@pytest.mark.parametrize(("start", "event_name"), CASES, ids=[f"{s}|{e}" for s, e in CASES])
def test_transition_table(start: str, event_name: str) -> None:
    state = STATES[start]
    event = EVENTS[event_name](state)
    expected = TABLE[start][event_name]
    if expected == NO:
        with pytest.raises(InvalidState):
            transition(state, event)
        return
    assert shown(transition(state, event)) == expected


def test_refusals_carry_codes_the_api_maps_to_409() -> None:
    with pytest.raises(InvalidState) as cancel:
        transition(STATES["confirming"], Cancel())
    assert cancel.value.code == "intent_not_cancelable"
    with pytest.raises(InvalidState) as resolve:
        transition(STATES["paid"], Resolve(Resolution.MARK_PAID))
    assert resolve.value.code == "intent_not_resolvable"


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # Seen in time, final after expiry: the customer paid in time.
        ((TransferSeen(100), Expire(), TransferConfirmed(100)), "paid"),
        # The first funds arrive after the end: a person decides, even when they cover it.
        ((Expire(), unseen(100)), "requires_action/paid_late"),
        # ... unless the chain says they were mined before the expiry (a lagging watcher).
        ((Expire(), TransferSeen(100, mined_in_time=True), TransferConfirmed(100)), "paid"),
        ((Expire(), TransferConfirmed(100, was_seen=False, mined_in_time=True)), "paid"),
        ((Expire(), TransferSeen(100, mined_in_time=False), TransferConfirmed(100)), NO_LATE),
        # Mined after the expiry but heard of before the gateway marked it: still late.
        ((TransferSeen(100, mined_in_time=False), Expire(), TransferConfirmed(100)), NO_LATE),
        # A reorg re-mines an in-time payment after the expiry, in a late block.
        (
            (
                TransferSeen(100, mined_in_time=True),
                Expire(),
                TransferReverted(100, was_confirmed=False),
                TransferSeen(100, mined_in_time=False),
                TransferConfirmed(100),
            ),
            NO_LATE,
        ),
        ((Cancel(), TransferConfirmed(100, was_seen=False, mined_in_time=True)), NO_LATE),
        ((Cancel(), unseen(100)), "requires_action/paid_late"),
        # Underpaid, then topped up during the cool-down: paid.
        ((unseen(40), Expire(), unseen(60)), "paid"),
        ((unseen(40), Expire(), unseen(70)), "paid/overpaid"),
        # Two transfers summed.
        ((TransferSeen(60), TransferSeen(40), TransferConfirmed(60)), "confirming"),
        ((unseen(60), unseen(40)), "paid"),
        # A reorg takes the second of two back, and a re-mine restores it.
        ((unseen(60), unseen(40), TransferReverted(40, was_confirmed=True)), "partially_paid"),
        (
            (
                unseen(60),
                unseen(40),
                TransferReverted(40, was_confirmed=True),
                TransferSeen(40),
                TransferConfirmed(40),
            ),
            "paid",
        ),
        # A reverted wrong-asset transfer undoes its exception; expiry then shows through.
        ((MisdirectedTransfer(WA), Expire(), MisdirectedTransferReverted(WA)), "expired"),
        ((unseen(40), MisdirectedTransfer(WN), MisdirectedTransferReverted(WN)), "partially_paid"),
        # Wrong network outranks wrong asset.
        ((MisdirectedTransfer(WA), MisdirectedTransfer(WN)), "requires_action/wrong_network"),
    ],
)
def test_stories(events: tuple[IntentEvent, ...], expected: str) -> None:
    assert shown(run(*events)) == expected


# -- underpayment tolerance -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ((unseen(98),), "paid"),  # 2 short, 2 tolerated: paid, no exception
        ((unseen(97),), "partially_paid"),
        ((unseen(97), Expire()), "requires_action/underpaid"),
        ((unseen(97), Expire(), unseen(1)), "paid"),
        ((TransferSeen(98),), "confirming"),  # nothing is decided before it is final
        ((unseen(98), unseen(5)), "paid/overpaid"),  # over the amount due, not the threshold
        ((Expire(), unseen(99)), "requires_action/paid_late"),  # late stays late
    ],
)
def test_tolerance_of_two_units(events: tuple[IntentEvent, ...], expected: str) -> None:
    state = run(*events, tolerance=2)
    assert shown(state) == expected
    if state.status == "paid" and state.confirmed < DUE:
        assert state.remaining == DUE - state.confirmed  # the shortfall accepted


def test_a_tolerance_as_large_as_the_amount_never_makes_nothing_paid() -> None:
    assert shown(run(due=5, tolerance=50)) == "awaiting_payment"
    assert shown(run(Expire(), due=5, tolerance=50)) == "expired"
    assert shown(run(unseen(1), due=5, tolerance=50)) == "paid"


@pytest.mark.parametrize(
    ("amount_due", "percent", "amount", "allowance"),
    [
        (100, "0", 0, 0),
        (100, "0.5", 0, 0),  # half a base unit rounds down: never in the payer's favour
        (1_000, "0.5", 0, 5),
        (25_000_000, "0.5", 100_000, 125_000),  # the percent is larger
        (25_000_000, "0.1", 100_000, 100_000),  # the amount is larger
        (25_000_000, "0", 100_000, 100_000),
        (25 * 10**18, "0.0001", 0, 25 * 10**12),  # 18 decimals, exact
        (2**256 - 1, "99.9999", 0, (2**256 - 1) * 999_999 // 1_000_000),  # no 28-digit rounding
    ],
)
def test_tolerance_allowance(amount_due: int, percent: str, amount: int, allowance: int) -> None:
    tolerance = UnderpaymentTolerance(percent=Decimal(percent), amount_base_units=amount)
    assert tolerance.allowance(amount_due) == allowance


@pytest.mark.parametrize(("percent", "amount"), [("100", 0), ("-0.1", 0), ("1", -1)])
def test_tolerance_bounds(percent: str, amount: int) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        UnderpaymentTolerance(percent=Decimal(percent), amount_base_units=amount)
