"""What the "Refunds and payouts" page shows, made from the gateway's ops API answers.

A refund (`re_…`) or payout (`po_…`) comes as the gateway's ops object: the public one
plus its merchant, its approvals and whether it may be planned. Amounts become text with
the asset's decimals (never through a float); a malformed field shows as "—", so one odd
item never breaks the page. Whether an admin may still approve is the gateway's own
`approved` flag, not counted here: the four-eyes rule lives in the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from stablegate_common.core.ids import has_prefix
from stablegate_dashboard.outgoing.service import (
    NATIVE_DECIMALS,
    Quantity,
    base_units,
    quantity,
    stamp,
)

KINDS = {"re": "refund", "po": "payout"}
STATUSES = ("pending", "awaiting_signature", "processing", "succeeded", "failed", "canceled")
APPROVALS_NEEDED = 2  # what the gateway asks for (two different admins); shown, not enforced


def is_disbursement_id(value: str) -> bool:
    return any(has_prefix(value, prefix) for prefix in KINDS) and value[3:].isalnum()


@dataclass(frozen=True)
class Approval:
    by: str
    at: datetime | None
    email: str | None = None  # the ops user's, when they are one of this dashboard's


@dataclass(frozen=True)
class DisbursementRow:
    id: str
    kind: str  # refund | payout
    status: str
    merchant: str | None
    payment_intent: str | None
    note: str | None  # a refund's reason, a payout's description
    network: str
    amount: Quantity
    destination_address: str | None
    tx_hash: str | None
    network_fee: Quantity | None
    fee_paid_by: str | None
    failure_reason: str | None
    requires_approval: bool
    approved: bool
    approvals: list[Approval]
    created_at: datetime | None
    transfer_id: str | None  # set once planned into a signing round
    intent_known: bool = False  # the dashboard has a page for its intent

    @property
    def awaits_approval(self) -> bool:
        return self.status == "pending" and self.requires_approval and not self.approved

    def approved_by(self, user_id: str) -> bool:
        return any(a.by == user_id for a in self.approvals)

    @property
    def approvals_text(self) -> str:
        return f"{len(self.approvals)} of {APPROVALS_NEEDED}"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _approvals(value: object) -> list[Approval]:
    if not isinstance(value, list):
        return []
    return [
        Approval(by=by, at=stamp(item.get("at")))
        for item in value
        if isinstance(item, dict) and (by := _text(item.get("by"))) is not None
    ]


def _network_fee(raw: object) -> tuple[Quantity | None, str | None]:
    if not isinstance(raw, dict):
        return None, None
    paid_by = _text(raw.get("paid_by"))
    units = raw.get("amount_base_units")
    if units is None:
        return None, paid_by
    symbol = str(raw.get("asset") or "native coin")
    return quantity(units, NATIVE_DECIMALS.get(symbol), symbol), paid_by


def disbursement_row(raw: dict[str, Any]) -> DisbursementRow:
    found_id = str(raw.get("id") or "—")
    kind = str(raw.get("object") or KINDS.get(found_id[:2], "—"))
    asset = str(raw.get("asset") or "?")
    fee, paid_by = _network_fee(raw.get("network_fee"))
    requires = raw.get("requires_approval") is True
    return DisbursementRow(
        id=found_id,
        kind=kind,
        status=str(raw.get("status") or "—"),
        merchant=_text(raw.get("merchant")),
        payment_intent=_text(raw.get("payment_intent")),
        note=_text(raw.get("reason") if kind == "refund" else raw.get("description")),
        network=str(raw.get("network") or "—"),
        amount=quantity(raw.get("amount_base_units"), base_units(raw.get("decimals")), asset),
        destination_address=_text(raw.get("destination_address")),
        tx_hash=_text(raw.get("tx_hash")),
        network_fee=fee,
        fee_paid_by=paid_by,
        failure_reason=_text(raw.get("failure_reason")),
        requires_approval=requires,
        # Missing or odd: not approved, so the page never offers less than the gateway asks.
        approved=raw.get("approved") is True or not requires,
        approvals=_approvals(raw.get("approvals")),
        created_at=stamp(raw.get("created_at")),
        transfer_id=_text(raw.get("transfer_id")),
    )


def with_lookups(
    row: DisbursementRow, known_intents: set[str], emails: dict[str, str]
) -> DisbursementRow:
    """The row with what the dashboard itself knows: its intent page, the approvers."""
    approvals = [Approval(a.by, a.at, emails.get(a.by)) for a in row.approvals]
    return replace(row, intent_known=row.payment_intent in known_intents, approvals=approvals)
