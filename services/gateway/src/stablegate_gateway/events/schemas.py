"""The merchant event types (DESIGN.md §3): what a webhook endpoint can subscribe to."""

from __future__ import annotations

from stablegate_gateway.core.lifecycle import Status

# `payment_intent.awaiting_payment` is what a reorg that takes every counted transfer back
# produces: the intent waits for payment again, and the merchant must hear of it.
INTENT_EVENT_TYPES = frozenset(
    {"payment_intent.created"} | {f"payment_intent.{status.value}" for status in Status}
)
EVENT_TYPES = INTENT_EVENT_TYPES | {"transfer.unsolicited"}
