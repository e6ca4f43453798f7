"""The payment-intent state machine (DESIGN.md §2) as one pure function.

`transition(state, event)` returns the next state. The status is derived from the
amounts, the misdirected transfers and a few facts (expired, canceled, resolved) rather
than stored edge by edge, which is what makes a reorg easy to get right: reverting a
transfer subtracts it and the same rules give the earlier status back.

What each status and exception means to a merchant:

- `awaiting_payment`: created, nothing received yet.
- `confirming`: a transfer of the right token is seen on chain but not final; nothing
  is decided until it is.
- `partially_paid`: final funds are below the amount due (minus the underpayment
  tolerance); the address still accepts top-ups until the intent expires.
- `paid`: final funds cover the amount due, or fall short of it by no more than the
  intent's underpayment tolerance (then `exception` stays null and `amount_remaining`
  shows the shortfall that was accepted). Fulfil the order. `exception` says what
  arrived beyond the request: `overpaid` (more of the right token than due; refund the
  difference if you wish), or `wrong_asset` / `wrong_network` (another token, or the
  same address on the other EVM network, also received funds).
- `requires_action`: a person must decide, then call `resolve` (`mark_paid` or `void`):
  `underpaid` (expired holding less than due), `paid_late` (funds arrived only after
  the intent expired or was canceled, while its address was still cooling down),
  `wrong_asset` (a registered token other than the intent's was sent to its address),
  `wrong_network` (the right address, but on the other EVM network: an Ethereum
  intent's address paid on BNB Smart Chain or the reverse).
- `expired`: the expiry passed with nothing received.
- `canceled`: canceled by the merchant before any funds arrived, or voided through
  `resolve` (then `exception` keeps the reason it needed action).

"In time" is chain time: a transfer mined before the expiry (with the clock-skew
allowance) funds the intent before its end even when it is processed after it, so a
lagging watcher or a re-mine after a one-block reorg does not turn a punctual payment
into `paid_late`. The caller, which knows both times, says so on the event.

Underpaid-then-late: a customer who paid part before expiry and tops up during the
cool-down is `paid` once the total covers the amount due; funds that arrive only after
the end are never `paid` without a person (`paid_late`), because the order may be gone
or the price may no longer hold.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Context, Decimal
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
    WRONG_NETWORK = "wrong_network"


class Misdirection(StrEnum):
    """Why a transfer to the intent's address does not count towards it."""

    WRONG_ASSET = "wrong_asset"
    WRONG_NETWORK = "wrong_network"


class Resolution(StrEnum):
    """A person's decision on a `requires_action` intent."""

    MARK_PAID = "mark_paid"  # -> paid, exception kept for the record
    VOID = "void"  # -> canceled, exception kept for the record


RESOLVED_STATUS = {Resolution.MARK_PAID: Status.PAID, Resolution.VOID: Status.CANCELED}


@dataclass(frozen=True)
class IntentState:
    amount_due: int
    tolerance: int = 0  # a shortfall up to this many base units still counts as paid
    status: Status = Status.AWAITING_PAYMENT
    exception: str | None = None
    pending: int = 0  # seen, not yet final
    confirmed: int = 0  # final
    wrong_asset: int = 0  # live transfers of another registered token to the address
    wrong_network: int = 0  # live transfers to the address on the other EVM network
    expired: bool = False
    canceled: bool = False
    funded_before_end: bool = False  # some funds were seen before expiry or cancel
    resolution: Resolution | None = None

    @property
    def received(self) -> int:
        return self.pending + self.confirmed

    @property
    def remaining(self) -> int:
        return max(self.amount_due - self.confirmed, 0)

    @property
    def paid_threshold(self) -> int:
        """The least final amount that pays the intent (never zero: nothing is not paid)."""
        return max(self.amount_due - self.tolerance, 1)


# `mined_in_time` on a transfer event is the chain's word: its block is older than the
# intent's expiry (within the clock-skew allowance). None when the caller cannot tell;
# then the time the event is processed decides, as if the chain had no lag.


@dataclass(frozen=True)
class TransferSeen:
    amount: int
    mined_in_time: bool | None = None


@dataclass(frozen=True)
class TransferConfirmed:
    amount: int
    was_seen: bool = True  # False when the first we hear of it is its confirmation
    mined_in_time: bool | None = None


@dataclass(frozen=True)
class TransferReverted:
    amount: int
    was_confirmed: bool


@dataclass(frozen=True)
class MisdirectedTransfer:
    """A transfer to the address that cannot count: another token or the other network.
    Counted by number, not amount: its units are not the intent's."""

    kind: Misdirection


@dataclass(frozen=True)
class MisdirectedTransferReverted:
    kind: Misdirection


@dataclass(frozen=True)
class Expire:
    pass


@dataclass(frozen=True)
class Cancel:
    pass


@dataclass(frozen=True)
class Resolve:
    action: Resolution


IntentEvent = (
    TransferSeen
    | TransferConfirmed
    | TransferReverted
    | MisdirectedTransfer
    | MisdirectedTransferReverted
    | Expire
    | Cancel
    | Resolve
)


def transition(state: IntentState, event: IntentEvent) -> IntentState:
    """The state after `event`; raises InvalidState for an event the state refuses."""
    return _derive(_apply(state, event))


def _apply(state: IntentState, event: IntentEvent) -> IntentState:
    match event:
        case TransferSeen() | TransferConfirmed() | TransferReverted():
            return _apply_transfer(state, event)
        case MisdirectedTransfer(kind):
            return _count_misdirected(state, kind, +1)
        case MisdirectedTransferReverted(kind):
            return _count_misdirected(state, kind, -1)
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
        case Resolve(action):
            if state.status is not Status.REQUIRES_ACTION:
                raise InvalidState(
                    f"only a payment intent in status requires_action can be resolved; "
                    f"this one is {state.status}",
                    code="intent_not_resolvable",
                )
            return replace(state, resolution=action)
    raise TypeError(f"unknown event {event!r}")  # pragma: no cover


def _apply_transfer(
    state: IntentState, event: TransferSeen | TransferConfirmed | TransferReverted
) -> IntentState:
    _positive(event.amount)
    pending, confirmed, funded = state.pending, state.confirmed, state.funded_before_end
    # A block younger than the expiry proves the expiry passed, whatever the clock says.
    expired = state.expired
    match event:
        case TransferSeen(amount, mined_in_time):
            pending += amount
            funded = funded or _in_time(state, mined_in_time)
            expired = expired or mined_in_time is False
        case TransferConfirmed(amount, was_seen, mined_in_time):
            if was_seen:
                pending -= amount
            confirmed += amount
            funded = funded or (not was_seen and _in_time(state, mined_in_time))
            expired = expired or mined_in_time is False
        case TransferReverted(amount, was_confirmed):
            if was_confirmed:
                confirmed -= amount
            else:
                pending -= amount
            funded = funded and (pending + confirmed) > 0
    if pending < 0 or confirmed < 0:
        raise InvalidState("a transfer moved more than the intent holds")
    return replace(
        state, pending=pending, confirmed=confirmed, funded_before_end=funded, expired=expired
    )


def _in_time(state: IntentState, mined_in_time: bool | None) -> bool:
    """Whether a transfer arriving now funds the intent before its end.

    Expiry is judged on chain time: a payment mined before it counts as in time however
    late the watcher reports it (lag, an outage, a re-mine after a reorg). A cancel has no
    chain time, and the customer was told: funds after it are late.
    """
    if state.canceled:
        return False
    if mined_in_time is None:
        return not state.expired
    return mined_in_time


def _count_misdirected(state: IntentState, kind: Misdirection, delta: int) -> IntentState:
    if kind is Misdirection.WRONG_ASSET:
        counts = replace(state, wrong_asset=state.wrong_asset + delta)
    else:
        counts = replace(state, wrong_network=state.wrong_network + delta)
    if counts.wrong_asset < 0 or counts.wrong_network < 0:
        raise InvalidState(f"no {kind} transfer to revert")
    return counts


def _derive(state: IntentState) -> IntentState:
    status, exception = _status_for(state)
    return replace(state, status=status, exception=exception)


def _status_for(s: IntentState) -> tuple[Status, str | None]:
    if s.resolution is not None:
        # A person decided: later chain news changes the amounts, never the decision.
        return RESOLVED_STATUS[s.resolution], s.exception
    ended = s.expired or s.canceled
    misdirected = _misdirection(s)
    if s.confirmed >= s.paid_threshold and (not ended or s.funded_before_end):
        return Status.PAID, (Exception_.OVERPAID if s.confirmed > s.amount_due else misdirected)
    if s.pending > 0:
        return Status.CONFIRMING, None
    if misdirected is not None:
        return Status.REQUIRES_ACTION, misdirected
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


def _misdirection(s: IntentState) -> Exception_ | None:
    # The other network first: it is the harder one to get back.
    if s.wrong_network > 0:
        return Exception_.WRONG_NETWORK
    if s.wrong_asset > 0:
        return Exception_.WRONG_ASSET
    return None


def _positive(amount: int) -> None:
    if amount <= 0:
        raise InvalidState("transfer amounts are positive")


# -- underpayment tolerance -----------------------------------------------------------------

# The default context keeps 28 digits; a uint256 amount times a percent needs ~85.
_WIDE = Context(prec=200)


@dataclass(frozen=True)
class UnderpaymentTolerance:
    """How short of the amount due a payment may fall and still be `paid`: the larger of
    `percent` of the amount due and `amount_base_units`. Zero for both: exact payment."""

    percent: Decimal = Decimal(0)
    amount_base_units: int = 0

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.percent < Decimal(100):
            raise ValueError("the tolerance percent must be at least 0 and below 100")
        if self.amount_base_units < 0:
            raise ValueError("the tolerance amount must not be negative")

    def allowance(self, amount_due: int) -> int:
        """The tolerated shortfall in base units, rounded down (in the merchant's favour)."""
        share = _WIDE.divide(_WIDE.multiply(Decimal(amount_due), self.percent), Decimal(100))
        return max(int(share.to_integral_value(ROUND_FLOOR)), self.amount_base_units)
