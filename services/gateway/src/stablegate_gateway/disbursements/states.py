"""A refund's or payout's status, derived from the outgoing transfers that carry it.

Pure: no I/O. DESIGN.md §8's statuses:

    pending → awaiting_signature → processing → succeeded | failed | canceled

A disbursement is carried by one token transfer at a time (`outgoing_transfers.reference`
is its id); a fee bump or a re-plan adds another with the same reference. Its status is
read off all of them, the live one winning:

- any `confirmed`                         → `succeeded` (the money arrived)
- else any in flight (`signed`, `broadcast`, `canceling`: signed bytes exist and may be
  mined)                                  → `processing`
- else any `awaiting_signature`           → `awaiting_signature`
- else any `planned`                      → `pending` (in a round not yet handed out)
- else any `failed` that was mined (reverted on chain: gas spent, tokens did not move)
                                          → `failed` (final: the merchant decides again)
- else (none, or only `canceled`, `replaced`, or `failed` unmined: provably never mined,
  e.g. a Tron transaction expired by the solidified head, or a round canceled by ops)
                                          → `pending`, to be planned again; unless the
  merchant canceled it                    → `canceled`.

`succeeded` is not final against a reorg: its transfer back in `broadcast` makes it
`processing` again until it confirms again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from stablegate_gateway.outgoing.states import OutgoingState


class DisbursementStatus(StrEnum):
    PENDING = "pending"
    AWAITING_SIGNATURE = "awaiting_signature"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


D = DisbursementStatus
FINAL = frozenset({D.SUCCEEDED, D.FAILED, D.CANCELED})
# What a merchant may still cancel: nothing of it was handed to a signer.
CANCELABLE = frozenset({D.PENDING})
# Counted against what is refundable or payable (everything but failed and canceled).
COMMITTED = frozenset({D.PENDING, D.AWAITING_SIGNATURE, D.PROCESSING, D.SUCCEEDED})

_IN_FLIGHT = frozenset({OutgoingState.SIGNED, OutgoingState.BROADCAST, OutgoingState.CANCELING})


@dataclass(frozen=True)
class CarrierState:
    """One outgoing transfer carrying the disbursement, as far as its status cares."""

    state: OutgoingState
    mined: bool  # it is (or was, for a revert) in a block


def derive_status(carriers: Iterable[CarrierState], *, canceled_by_merchant: bool) -> D:
    states = list(carriers)
    present = {c.state for c in states}
    if OutgoingState.CONFIRMED in present:
        return D.SUCCEEDED
    if present & _IN_FLIGHT:
        return D.PROCESSING
    if OutgoingState.AWAITING_SIGNATURE in present:
        return D.AWAITING_SIGNATURE
    if OutgoingState.PLANNED in present:
        return D.PENDING
    if any(c.state is OutgoingState.FAILED and c.mined for c in states):
        return D.FAILED
    return D.CANCELED if canceled_by_merchant else D.PENDING


def needs_plan(status: D, carriers: Iterable[CarrierState]) -> bool:
    """Pending with no transfer that could still be signed or mined: the next round
    plans it (again)."""
    if status is not D.PENDING:
        return False
    return not any(
        c.state in _IN_FLIGHT
        or c.state in (OutgoingState.PLANNED, OutgoingState.AWAITING_SIGNATURE)
        for c in carriers
    )
