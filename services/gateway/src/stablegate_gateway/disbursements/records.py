"""Recording a refund's or payout's change for the merchant, in the caller's transaction:
the merchant event (`refund.created|succeeded|failed|canceled`, the same for payouts;
what webhooks and `GET /v1/events` carry) and one webhook delivery per endpoint that
wants it. The in-between statuses (`awaiting_signature`, `processing`) are visible on the
object but are not events (DESIGN.md §3 lists the four)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_gateway.disbursements.models import Disbursement
from stablegate_gateway.disbursements.presenter import present_disbursement
from stablegate_gateway.disbursements.states import COMMITTED, DisbursementStatus
from stablegate_gateway.events.records import store_merchant_event
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.webhooks.service import enqueue_deliveries

log = logging.getLogger(__name__)

EVENT_STATUSES = frozenset(
    {DisbursementStatus.SUCCEEDED, DisbursementStatus.FAILED, DisbursementStatus.CANCELED}
)


async def record_change(
    session: AsyncSession,
    disbursement: Disbursement,
    *,
    previous_status: DisbursementStatus | None,
) -> None:
    """Tell the merchant of a new refund or payout, or of one that reached an outcome."""
    await session.flush()
    unloaded = inspect(disbursement).unloaded
    if unloaded:
        await session.refresh(disbursement, attribute_names=sorted(unloaded))
    status = DisbursementStatus(disbursement.status)
    if previous_status is None:
        what = "created"
    elif status is not previous_status and status in EVENT_STATUSES:
        what = status.value
    else:
        return
    event = await store_merchant_event(
        session,
        merchant_id=disbursement.merchant_id,
        event_type=f"{disbursement.kind}.{what}",
        object_id=disbursement.id,
        sequence=disbursement.version,
        obj=present_disbursement(disbursement),
    )
    await enqueue_deliveries(session, event)


async def change_status(
    session: AsyncSession,
    disbursement: Disbursement,
    status: DisbursementStatus,
    *,
    reason: str | None,
) -> None:
    """Set a new status (the caller holds the row lock), keep the intent's refunded sum in
    step (a refund stops counting once failed or canceled, and counts again if a reorg
    brings it back), and record it."""
    previous = DisbursementStatus(disbursement.status)
    if status is previous:
        return
    if disbursement.kind == "refund" and disbursement.payment_intent_id is not None:
        delta = _committed(status) - _committed(previous)
        if delta:
            intent = await session.get(
                PaymentIntent, disbursement.payment_intent_id, with_for_update=True
            )
            assert intent is not None
            intent.amount_refunded_base_units += delta * disbursement.amount_base_units
            if intent.amount_refunded_base_units > intent.amount_confirmed_base_units:
                # A refund given up came back (a reorg past the trusted depth) after its
                # amount was refunded again, or the payment itself was reorged away.
                log.error(
                    "refunds of an intent exceed what it received",
                    extra={"intent": intent.id, "refund": disbursement.id},
                )
    disbursement.status = status.value
    if reason is not None:
        disbursement.failure_reason = reason
    disbursement.version += 1
    disbursement.updated_at = datetime.now(UTC)
    await record_change(session, disbursement, previous_status=previous)


def _committed(status: DisbursementStatus) -> int:
    return 1 if status in COMMITTED else 0
