"""The payment-intent state machine (DESIGN.md §2) as one pure function.

`transition(state, event)` returns the next state. The status is derived from the
amounts and two facts (expired, canceled) rather than stored edge by edge, which is what
makes a reorg easy to get right: reverting a transfer subtracts its amount and the same
rules give the earlier status back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from stablegate_common.core.errors import InvalidState


class Status(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    CONFIRMING = "confirming"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    REQUIRES_ACTION = "requires_action"
    EXPIRED = "expired"
    CANCELED = "canceled"


class Exception_(StrEnum):
    OVERPAID = "overpaid"
    UNDERPAID = "underpaid"
    PAID_LATE = "paid_late"
    WRONG_ASSET = "wrong_asset"


@dataclass(frozen=True)
class IntentState:
    amount_due: int
    status: Status = Status.AWAITING_PAYMENT
    exception: str | None = None
    pending: int = 0  # seen, not yet final
    confirmed: int = 0  # final
    expired: bool = False
    canceled: bool = False
    funded_before_end: bool = False  # some funds were seen before expiry or cancel

    @property
    def received(self) -> int:
        return self.pending + self.confirmed

    @property
    def remaining(self) -> int:
        return max(self.amount_due - self.confirmed, 0)


@dataclass(frozen=True)
class TransferSeen:
    amount: int


@dataclass(frozen=True)
class TransferConfirmed:
    amount: int
    was_seen: bool = True  # False when the first we hear of it is its confirmation


@dataclass(frozen=True)
class TransferReverted:
    amount: int
    was_confirmed: bool


@dataclass(frozen=True)
class Expire:
    pass


@dataclass(frozen=True)
class Cancel:
    pass


IntentEvent = TransferSeen | TransferConfirmed | TransferReverted | Expire | Cancel


def transition(state: IntentState, event: IntentEvent) -> IntentState:
    return _derive(_apply(state, event))


def _apply(state: IntentState, event: IntentEvent) -> IntentState:
    ended = state.expired or state.canceled
    match event:
        case TransferSeen(amount):
            _positive(amount)
            return replace(
                state,
                pending=state.pending + amount,
                funded_before_end=state.funded_before_end or not ended,
            )
        case TransferConfirmed(amount, was_seen):
            _positive(amount)
            pending = state.pending - amount if was_seen else state.pending
            if pending < 0:
                raise InvalidState("confirmed more than was pending")
            return replace(
                state,
                pending=pending,
                confirmed=state.confirmed + amount,
                funded_before_end=state.funded_before_end or (not was_seen and not ended),
            )
        case TransferReverted(amount, was_confirmed):
            _positive(amount)
            pending, confirmed = state.pending, state.confirmed
            if was_confirmed:
                confirmed -= amount
            else:
                pending -= amount
            if pending < 0 or confirmed < 0:
                raise InvalidState("reverted more than was received")
            funded = state.funded_before_end and (pending + confirmed) > 0
            return replace(state, pending=pending, confirmed=confirmed, funded_before_end=funded)
        case Expire():
            if state.status in (Status.PAID, Status.CANCELED) or state.expired:
                return state
            return replace(state, expired=True)
        case Cancel():
            if state.received > 0 or state.status is not Status.AWAITING_PAYMENT:
                raise InvalidState(
                    f"a payment intent in status {state.status} cannot be canceled",
                    code="intent_not_cancelable",
                )
            return replace(state, canceled=True)
    raise TypeError(f"unknown event {event!r}")  # pragma: no cover


def _derive(state: IntentState) -> IntentState:
    status, exception = _status_for(state)
    return replace(state, status=status, exception=exception)


def _status_for(s: IntentState) -> tuple[Status, str | None]:
    if s.confirmed >= s.amount_due:
        return Status.PAID, (Exception_.OVERPAID if s.confirmed > s.amount_due else None)
    if s.pending > 0:
        return Status.CONFIRMING, None
    ended = s.expired or s.canceled
    if s.confirmed > 0:
        if not ended:
            return Status.PARTIALLY_PAID, None
        late = not s.funded_before_end
        return Status.REQUIRES_ACTION, (Exception_.PAID_LATE if late else Exception_.UNDERPAID)
    if s.canceled:
        return Status.CANCELED, None
    if s.expired:
        return Status.EXPIRED, None
    return Status.AWAITING_PAYMENT, None


def _positive(amount: int) -> None:
    if amount <= 0:
        raise InvalidState("transfer amounts are positive")
