"""Address-pool upkeep: cooled addresses go back to the pool, and the pool stays full.

An address leaves `cooling` only when its cooldown has passed and its intent has ended
(a reorg can bring an ended intent back to `confirming`; its address then stays put).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import get_args

from sqlalchemy import select, update

from stablegate_common.core.assets import Family
from stablegate_gateway.addresses.models import DepositAddress
from stablegate_gateway.addresses.service import ensure_pool
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.intents.transitions import ENDED_STATUSES

log = logging.getLogger(__name__)

RELEASE_BATCH = 1000


async def release_cooled_addresses(ctx: GatewayContext, *, now: datetime | None = None) -> int:
    """Return every address whose cooldown is over to `free`; return how many."""
    total = 0
    while True:
        at = now or datetime.now(UTC)
        async with ctx.db.transaction() as session:
            due = (
                select(DepositAddress.id)
                .join(PaymentIntent, PaymentIntent.id == DepositAddress.intent_id)
                .where(
                    DepositAddress.status == "cooling",
                    DepositAddress.cooling_until <= at,
                    PaymentIntent.status.in_([s.value for s in ENDED_STATUSES]),
                )
                .order_by(DepositAddress.cooling_until)
                .limit(RELEASE_BATCH)
                .with_for_update(of=DepositAddress, skip_locked=True)
            )
            ids = list((await session.scalars(due)).all())
            if ids:
                await session.execute(
                    update(DepositAddress)
                    .where(DepositAddress.id.in_(ids))
                    .values(
                        status="free",
                        intent_id=None,
                        network=None,
                        allocated_at=None,
                        cooling_until=None,
                        released_at=at,
                    )
                )
        total += len(ids)
        if len(ids) < RELEASE_BATCH:
            break
    if total:
        log.info("cooled deposit addresses released", extra={"count": total})
    return total


async def maintain_address_pool(ctx: GatewayContext) -> None:
    """The job body: release cooled addresses, then top up every family's pool."""
    await release_cooled_addresses(ctx)
    for family in get_args(Family):
        async with ctx.db.transaction() as session:
            await ensure_pool(session, ctx, family)
