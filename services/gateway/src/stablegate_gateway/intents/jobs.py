"""The expiry job: intents past `expires_at` with nothing left in flight are expired.

Batches are claimed with `FOR UPDATE SKIP LOCKED`, so a batch never waits on an intent a
transfer is being applied to (that intent is picked up on the next tick) and several
runs could share the work. An intent still `confirming` at its expiry is left to its
transfer: when the transfer settles, the state machine sees the expiry and decides
between paid, underpaid and expired.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select

from stablegate_gateway.context import GatewayContext
from stablegate_gateway.core.lifecycle import Expire, Status
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.intents.transitions import advance_intent

log = logging.getLogger(__name__)

EXPIRABLE = (Status.AWAITING_PAYMENT.value, Status.PARTIALLY_PAID.value)


async def expire_due_intents(ctx: GatewayContext, *, now: datetime | None = None) -> int:
    """Expire every due intent, one transaction per batch; return how many changed."""
    batch_size = ctx.settings.gateway.expiry_batch_size
    total = 0
    while True:
        at = now or datetime.now(UTC)
        async with ctx.db.transaction() as session:
            intents = (
                await session.scalars(
                    select(PaymentIntent)
                    .where(PaymentIntent.status.in_(EXPIRABLE), PaymentIntent.expires_at <= at)
                    .order_by(PaymentIntent.expires_at)
                    .limit(batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            changed = 0
            for intent in intents:
                changed += await advance_intent(session, ctx, intent, [Expire()], now=at)
        total += changed
        # A short batch is the last; a batch that changed nothing would come back as is.
        if len(intents) < batch_size or changed == 0:
            break
    if total:
        log.info("payment intents expired", extra={"count": total})
    return total
