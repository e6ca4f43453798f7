"""Moving a stored payment intent through the pure state machine.

Owns the mapping between a `payment_intents` row and the core's `IntentState`, and the
one way an intent changes after creation: lock the row, derive its state, apply events,
write the derived columns back, bump the version, cool its address when it ends, and
record the change (bus event, merchant event, webhook deliveries) in the same
transaction. Callers (the transfer consumer, the expiry job, cancel and resolve) hold the
row `FOR UPDATE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_gateway.addresses.models import DepositAddress
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.core.lifecycle import (
    IntentEvent,
    IntentState,
    Resolution,
    Status,
    UnderpaymentTolerance,
    transition,
)
from stablegate_gateway.events.service import record_intent_change
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.intents.repository import transfers_of

# Statuses in which the customer is done with the address: it starts cooling (late
# payments are still attributed to the intent) and is released to the pool afterwards.
ENDED_STATUSES = frozenset({Status.PAID, Status.EXPIRED, Status.CANCELED, Status.REQUIRES_ACTION})


async def lock_intent(session: AsyncSession, intent_id: str) -> PaymentIntent | None:
    return await session.scalar(
        select(PaymentIntent)
        .where(PaymentIntent.id == intent_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def intent_state(intent: PaymentIntent, now: datetime) -> IntentState:
    """The core's view of a stored intent.

    Expiry is a fact of time (an intent still confirming at its expiry has expired even
    though its status says `confirming`): `expires_at` passed, or the machine marked it
    (`expired_at`, also set when a test or an operator moves `expires_at`).
    """
    tolerance = UnderpaymentTolerance(
        percent=Decimal(intent.underpayment_tolerance_percent),
        amount_base_units=intent.underpayment_tolerance_base_units,
    )
    return IntentState(
        amount_due=intent.amount_base_units,
        tolerance=tolerance.allowance(intent.amount_base_units),
        status=Status(intent.status),
        exception=intent.exception,
        pending=intent.amount_pending_base_units,
        confirmed=intent.amount_confirmed_base_units,
        wrong_asset=intent.wrong_asset_transfers,
        wrong_network=intent.wrong_network_transfers,
        expired=intent.expires_at <= now or intent.expired_at is not None,
        canceled=intent.canceled_at is not None,
        funded_before_end=intent.funded_before_end,
        resolution=Resolution(intent.resolution) if intent.resolution else None,
    )


async def advance_intent(
    session: AsyncSession,
    ctx: GatewayContext,
    intent: PaymentIntent,
    events: Sequence[IntentEvent],
    *,
    now: datetime,
) -> bool:
    """Apply `events` to a locked intent and record the change; return False when nothing
    the merchant or other services can see changed (no version bump, no event)."""
    before = intent_state(intent, now)
    after = before
    for event in events:
        after = transition(after, event)
    if _visible(after) == _visible(before):
        return False
    previous_status, previous_exception = intent.status, intent.exception
    _write_state(intent, after, now)
    intent.version += 1
    if after.status in ENDED_STATUSES and before.status not in ENDED_STATUSES:
        await start_cooling(session, ctx, intent, now)
    await session.flush()
    transfers = (await transfers_of(session, [intent.id]))[intent.id]
    await record_intent_change(
        session,
        ctx,
        intent,
        transfers,
        previous_status=previous_status,
        exception_changed=intent.exception != previous_exception,
    )
    return True


def _visible(state: IntentState) -> tuple[object, ...]:
    return (
        state.status,
        state.exception,
        state.pending,
        state.confirmed,
        state.wrong_asset,
        state.wrong_network,
        state.funded_before_end,
        state.resolution,
    )


def _write_state(intent: PaymentIntent, state: IntentState, now: datetime) -> None:
    intent.status = state.status.value
    intent.exception = state.exception
    intent.amount_pending_base_units = state.pending
    intent.amount_confirmed_base_units = state.confirmed
    intent.wrong_asset_transfers = state.wrong_asset
    intent.wrong_network_transfers = state.wrong_network
    intent.funded_before_end = state.funded_before_end
    intent.updated_at = now
    if state.status == Status.PAID:
        intent.paid_at = intent.paid_at or now
    else:
        intent.paid_at = None  # a reorg took the payment back
    if state.canceled and intent.canceled_at is None:
        intent.canceled_at = now
    if state.expired and intent.expired_at is None:
        intent.expired_at = min(now, intent.expires_at)
    if state.resolution is not None and intent.resolution is None:
        intent.resolution = state.resolution.value
        intent.resolved_at = now


async def start_cooling(
    session: AsyncSession, ctx: GatewayContext, intent: PaymentIntent, now: datetime
) -> None:
    """The intent ended: its address cools down before it returns to the pool.

    The cool-down runs from now for a canceled intent (the customer was told), but from
    the expiry for one that ended early (paid, or flagged for a wrong asset): its
    customer may still pay until then, and that money must still find the intent.
    """
    cooldown = timedelta(seconds=ctx.settings.gateway.address_cooldown_seconds)
    start = now if intent.canceled_at is not None else max(now, intent.expires_at)
    await session.execute(
        update(DepositAddress)
        .where(
            DepositAddress.id == intent.deposit_address_id,
            DepositAddress.intent_id == intent.id,
            DepositAddress.status.in_(("allocated", "cooling")),
        )
        .values(status="cooling", cooling_until=start + cooldown)
    )
