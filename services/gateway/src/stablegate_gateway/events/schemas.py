"""The merchant event types (DESIGN.md §3): what a webhook endpoint can subscribe to."""

from __future__ import annotations

from stablegate_gateway.core.lifecycle import Status

# `payment_intent.awaiting_payment` is what a reorg that takes every counted transfer back
# produces: the intent waits for payment again, and the merchant must hear of it.
INTENT_EVENT_TYPES = frozenset(
    {"payment_intent.created"} | {f"payment_intent.{status.value}" for status in Status}
)
# Refunds and payouts (`disbursements.records`): created, then one outcome.
DISBURSEMENT_EVENT_TYPES = frozenset(
    f"{kind}.{what}"
    for kind in ("refund", "payout")
    for what in ("created", "succeeded", "failed", "canceled")
)
EVENT_TYPES = INTENT_EVENT_TYPES | {"transfer.unsolicited"} | DISBURSEMENT_EVENT_TYPES
