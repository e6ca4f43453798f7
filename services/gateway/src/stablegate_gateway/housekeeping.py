"""Periodic clean-up of what the gateway keeps for a while only: stored Idempotency-Key
responses after their retention (24 h by default) and the bus inbox's consumed event ids
after theirs (7 days). Both are plain deletes of old rows, safe to run again."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from stablegate_common.bus import prune_inbox
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.idempotency.service import purge_expired

log = logging.getLogger(__name__)


async def purge_idempotency_keys(ctx: GatewayContext, *, now: datetime | None = None) -> int:
    retention = timedelta(seconds=ctx.settings.gateway.idempotency_retention_seconds)
    async with ctx.db.transaction() as session:
        purged = await purge_expired(session, (now or datetime.now(UTC)) - retention)
    if purged:
        log.info("idempotency keys purged", extra={"count": purged})
    return purged


async def prune_consumed_events(ctx: GatewayContext) -> int:
    retention = timedelta(seconds=ctx.settings.gateway.inbox_retention_seconds)
    pruned = await prune_inbox(ctx.db, older_than=retention)
    if pruned:
        log.info("bus inbox pruned", extra={"count": pruned})
    return pruned


async def housekeeping(ctx: GatewayContext) -> None:
    """The job body."""
    await purge_idempotency_keys(ctx)
    await prune_consumed_events(ctx)
