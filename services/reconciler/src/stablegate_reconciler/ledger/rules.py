"""What a snapshot of an intent means for the books, as pure functions.

The gateway decides what a transfer means; the ledger only follows: a transfer the
gateway lists as `confirmed` is owed to the merchant, and one it no longer lists as
confirmed (reverted by a reorg, or dropped from the intent) is taken back by a reversing
entry. Postings are signed base units: debits positive, credits negative, and every
entry sums to zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from stablegate_common.core.errors import DomainError

ActionKind = Literal["book", "reverse"]


class UnbalancedEntry(DomainError):
    code = "unbalanced_entry"


@dataclass(frozen=True)
class SnapshotTransfer:
    transfer_id: str
    amount_base_units: int
    status: str  # pending | confirmed | reverted


@dataclass(frozen=True)
class BookingState:
    """What the ledger has done for one transfer so far."""

    transfer_id: str
    intent_id: str
    booked: bool
    amount_base_units: int  # the amount of the last booking (what a reversal takes back)


@dataclass(frozen=True)
class Action:
    transfer_id: str
    kind: ActionKind
    amount_base_units: int


@dataclass(frozen=True)
class Posting:
    account_code: str
    amount_base_units: int  # signed: debit > 0, credit < 0


def asset_account_code(network: str, asset: str, address: str) -> str:
    """The tokens held at one deposit address."""
    return f"asset:{network}:{asset}:{address}"


def liability_account_code(merchant_id: str, network: str, asset: str) -> str:
    """What is owed to one merchant in one asset on one network."""
    return f"liability:merchant:{merchant_id}:{network}:{asset}"


def booking_actions(
    intent_id: str,
    transfers: Sequence[SnapshotTransfer],
    bookings: Mapping[str, BookingState],
) -> list[Action]:
    """The entries a snapshot of `intent_id` calls for, given what is already booked.

    Ordered by transfer id so that two writers lock and post in the same order.
    """
    listed = {t.transfer_id: t for t in transfers}
    actions: list[Action] = []
    for transfer in listed.values():
        state = bookings.get(transfer.transfer_id)
        booked = state is not None and state.booked
        if transfer.status == "confirmed" and not booked:
            if transfer.amount_base_units == 0:
                continue  # nothing moved (a zero-value "poisoning" transfer): nothing to book
            actions.append(Action(transfer.transfer_id, "book", transfer.amount_base_units))
        elif (
            transfer.status != "confirmed"
            and state is not None
            and state.booked
            and state.intent_id == intent_id
        ):
            actions.append(Action(transfer.transfer_id, "reverse", state.amount_base_units))
    for state in bookings.values():
        # A booked transfer the intent no longer lists at all is taken back too; bookings
        # made for another intent are that intent's business.
        if state.intent_id == intent_id and state.booked and state.transfer_id not in listed:
            actions.append(Action(state.transfer_id, "reverse", state.amount_base_units))
    return sorted(actions, key=lambda a: a.transfer_id)


def transfer_postings(
    action: Action, *, asset_account: str, liability_account: str
) -> list[Posting]:
    """Booking debits the deposit address's holding and credits the merchant; a reversal
    does the opposite."""
    amount = action.amount_base_units if action.kind == "book" else -action.amount_base_units
    postings = [Posting(asset_account, amount), Posting(liability_account, -amount)]
    check_balanced(postings)
    return postings


def check_balanced(postings: Iterable[Posting]) -> None:
    items = list(postings)
    if len(items) < 2:
        raise UnbalancedEntry("a journal entry needs at least two postings", param="postings")
    if any(p.amount_base_units == 0 for p in items):
        raise UnbalancedEntry("a posting must move a non-zero amount", param="postings")
    total = sum(p.amount_base_units for p in items)
    if total != 0:
        raise UnbalancedEntry(f"postings sum to {total}, not zero", param="postings")
