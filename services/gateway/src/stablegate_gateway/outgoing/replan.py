"""Re-planning a Tron sweep whose transaction expired unmined.

A Tron transaction carries its own expiration; once the head block is past it unmined, it
can never be included, and no retry of the same bytes helps (DESIGN §8: re-broadcast of
the same bytes is the only retry). Nothing moved, so the funds are still at the deposit
address: the remedy is a new plan and a new signing round. The consumer marks the
transfer failed (`expired`) and calls `TronReplan.expired`; this loop plans the network
again as soon as its round is finished (the broadcaster has failed what depended on the
expired transfer), so the operator finds the next request waiting. If the process stops
first, the scheduled sweep round plans the same funds: the flag is only a shortcut.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.chains.base import ChainError
from stablegate_common.lifecycle import sleep_or_stop
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.outgoing import repository
from stablegate_gateway.outgoing.metrics import LOOP_CRASHES
from stablegate_gateway.outgoing.models import OutgoingTransfer
from stablegate_gateway.outgoing.repository import SigningRoundInFlight
from stablegate_gateway.outgoing.sweeps import SweepsNotConfigured, plan_sweeps

log = logging.getLogger(__name__)

REPLANNED_BY = "replan"


class TronReplan:
    def __init__(self, ctx: GatewayContext, *, poll_seconds: float = 5.0) -> None:
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self.wanted: set[str] = set()  # networks with an expired sweep transfer

    async def expired(self, session: AsyncSession, transfer: OutgoingTransfer) -> None:
        """The consumer's hook (in its transaction): a sweep-round transfer expired."""
        batch = await repository.get_batch(session, transfer.batch_id)
        if batch.kind not in ("sweep", "replacement"):
            log.warning(
                "an expired Tron transfer of a %s batch is left to its owner",
                batch.kind,
                extra={"transfer_id": transfer.id},
            )
            return
        log.info(
            "a Tron sweep transfer expired unmined; re-planned once its round is finished",
            extra={"transfer_id": transfer.id, "batch_id": batch.id},
        )
        self.wanted.add(transfer.network)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for network in sorted(self.wanted):
                try:
                    await self.replan(network)
                except (ChainError, SQLAlchemyError, OSError, TimeoutError) as exc:
                    log.warning("re-plan failed, retrying", extra={"error": repr(exc)})
                except SigningRoundInFlight:
                    pass  # an operator planned the network meanwhile: not yet
                except Exception:  # a bug here must not stop the merchant API
                    LOOP_CRASHES.labels("replan").inc()
                    log.exception("re-plan crashed, retrying")
            await sleep_or_stop(stop, self.poll_seconds)

    async def replan(self, network: str) -> list[str] | None:
        """The new batch ids, or None while the network's round is still unfinished."""
        async with self.ctx.db.transaction() as session:
            if await repository.unfinished_batch(session, network) is not None:
                return None
            try:
                batches = await plan_sweeps(session, self.ctx, network, REPLANNED_BY)
            except SweepsNotConfigured as exc:
                self.wanted.discard(network)
                log.warning("cannot re-plan the expired sweep", extra={"error": str(exc)})
                return []
        self.wanted.discard(network)
        ids = [b.id for b in batches]
        log.info("re-planned a sweep after a Tron expiry", extra={"batches": ids})
        return ids
