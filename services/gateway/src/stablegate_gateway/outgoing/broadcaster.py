"""Broadcasting signed outgoing transfers (DESIGN.md §8, step 5), one replica at a time.

Each round, under a transaction-scoped advisory lock held on a connection of its own (as
the outbox relay does; a second replica skips the round):
1. a transfer not yet broadcast whose dependency ended failed or canceled gets
   DEPENDENCY_FAILED (it will never be sent);
2. every `signed` transfer whose dependency is confirmed (or has none), and every
   `broadcast` one not mined `rebroadcast_seconds` after its last send, is sent: first
   BROADCAST_SENT is stored and COMMITTED, then the signed bytes go to the node. A crash
   between the two leaves a `broadcast` transfer that the next round sends again, the
   same bytes: nothing is ever sent that was not recorded first, and a second send of
   the same bytes is no second transaction (the node answers "already known" / "nonce
   too low" / DUP_TRANSACTION_ERROR, which count as sent);
3. a refusal is recorded in `last_broadcast_error` (the transfer stays where it is; the
   operator sees why, and a stuck one is replaced, see `consumers.plan_stuck_replacements`).

Sends go in nonce order per source (a lost nonce blocks every later one).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from stablegate_common.chains import BroadcastRejected, ChainError, RawTransactionSender
from stablegate_common.chains.evm import EvmClient
from stablegate_common.chains.tron import TronClient
from stablegate_common.db import Database
from stablegate_common.lifecycle import sleep_or_stop
from stablegate_gateway.outgoing import metrics, repository
from stablegate_gateway.outgoing.consumers import plan_stuck_replacements
from stablegate_gateway.outgoing.metrics import BROADCASTS, LOOP_CRASHES
from stablegate_gateway.outgoing.models import OutgoingTransfer
from stablegate_gateway.outgoing.states import OutgoingEvent, OutgoingState

log = logging.getLogger(__name__)

LOCK_KEY = "outgoing-broadcaster"
_NOT_SENT = (
    OutgoingState.PLANNED.value,
    OutgoingState.AWAITING_SIGNATURE.value,
    OutgoingState.SIGNED.value,
)
_DEAD = (OutgoingState.FAILED.value, OutgoingState.CANCELED.value)


class Broadcaster:
    def __init__(
        self,
        db: Database,
        senders: Mapping[str, RawTransactionSender],
        *,
        rebroadcast_seconds: float,
        stuck_seconds: float | None = None,
        native_symbols: Mapping[str, str] | None = None,
        idle_seconds: float = 2.0,
    ) -> None:
        """`senders`: one client per network that has outgoing transfers. With
        `stuck_seconds`, each round also plans fee bumps for stuck EVM transfers."""
        self.db = db
        self.senders = dict(senders)
        self.rebroadcast = timedelta(seconds=rebroadcast_seconds)
        self.stuck_seconds = stuck_seconds
        self.native_symbols = dict(native_symbols or {})
        self.idle_seconds = idle_seconds

    async def close(self) -> None:
        for sender in self.senders.values():
            await sender.close()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.round()
                await metrics.refresh(self.db)
            except (ChainError, SQLAlchemyError, OSError, TimeoutError) as exc:
                log.warning("broadcast round failed, retrying", extra={"error": repr(exc)})
            except Exception:  # a bug here must not stop the merchant API in this process
                LOOP_CRASHES.labels("broadcast").inc()
                log.exception("broadcast round crashed, retrying")
            await sleep_or_stop(stop, self.idle_seconds)

    async def round(self, *, now: datetime | None = None) -> int | None:
        """One round; the number of sends tried, or None when another replica holds it."""
        async with self.db.sessions() as guard, guard.begin():
            locked = await guard.scalar(
                text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": LOCK_KEY}
            )
            if not locked:
                return None
            await self.fail_dependents()
            if self.stuck_seconds is not None:
                async with self.db.transaction() as session:
                    await plan_stuck_replacements(
                        session,
                        stuck_seconds=self.stuck_seconds,
                        native_symbols=self.native_symbols,
                        now=now,
                    )
            due = await self._due(now or datetime.now(UTC))
            for transfer_id in due:
                await self.send(transfer_id)
            return len(due)

    async def fail_dependents(self) -> int:
        """DEPENDENCY_FAILED for what waits on a transfer that failed or was canceled."""
        dep = aliased(OutgoingTransfer)
        async with self.db.sessions() as session:
            ids = list(
                await session.scalars(
                    select(OutgoingTransfer.id)
                    .join(dep, dep.id == OutgoingTransfer.depends_on)
                    .where(OutgoingTransfer.state.in_(_NOT_SENT))
                    .where(dep.state.in_(_DEAD))
                )
            )
        for transfer_id in ids:
            async with self.db.transaction() as session:
                transfer = await repository.lock_transfer(session, transfer_id)
                if transfer.state in _NOT_SENT:
                    await repository.apply_event(
                        session,
                        transfer,
                        OutgoingEvent.DEPENDENCY_FAILED,
                        failure_reason=f"depends on {transfer.depends_on}, which did not happen",
                    )
        return len(ids)

    async def _due(self, now: datetime) -> list[str]:
        dep = aliased(OutgoingTransfer)
        ready = or_(OutgoingTransfer.depends_on.is_(None), dep.state == OutgoingState.CONFIRMED)
        resend = (
            (OutgoingTransfer.state == OutgoingState.BROADCAST)
            & OutgoingTransfer.block_number.is_(None)
            & (OutgoingTransfer.last_broadcast_at < now - self.rebroadcast)
        )
        query = (
            select(OutgoingTransfer.id)
            .outerjoin(dep, dep.id == OutgoingTransfer.depends_on)
            .where(OutgoingTransfer.network.in_(list(self.senders)))
            .where(((OutgoingTransfer.state == OutgoingState.SIGNED) & ready) | resend)
            .order_by(
                OutgoingTransfer.network,
                OutgoingTransfer.source_address,
                OutgoingTransfer.nonce,
                OutgoingTransfer.created_at,
                OutgoingTransfer.seq,
            )
        )
        async with self.db.sessions() as session:
            return list(await session.scalars(query))

    async def send(self, transfer_id: str) -> bool:
        """Record BROADCAST_SENT and commit, then send; True when the node took it."""
        async with self.db.transaction() as session:
            transfer = await repository.lock_transfer(session, transfer_id)
            if transfer.state not in (OutgoingState.SIGNED, OutgoingState.BROADCAST):
                return False
            await repository.apply_event(session, transfer, OutgoingEvent.BROADCAST_SENT)
            network, signed_hex = transfer.network, transfer.signed_hex
            expected = (transfer.tx_hash or "").lower().removeprefix("0x")
        if signed_hex is None:
            raise RuntimeError(f"{transfer_id} is {transfer.state} without signed bytes")
        # Committed: from here a crash leaves a `broadcast` transfer the next round re-sends.
        error: str | None = None
        try:
            sent = await self.senders[network].send_raw_transaction(signed_hex)
        except BroadcastRejected as exc:
            error = f"refused: {exc.message}"
        except ChainError as exc:
            error = f"node unavailable: {exc.message}"
        else:
            if sent.lower().removeprefix("0x") != expected:
                error = f"the node computed hash {sent}, the signed transaction is {expected}"
        BROADCASTS.labels(network, "sent" if error is None else "error").inc()
        await self._record(transfer_id, error)
        if error is not None:
            log.warning(
                "broadcast failed",
                extra={"transfer_id": transfer_id, "network": network, "error": error},
            )
        return error is None

    async def _record(self, transfer_id: str, error: str | None) -> None:
        async with self.db.transaction() as session:
            transfer = await repository.lock_transfer(session, transfer_id)
            if transfer.last_broadcast_error != error:
                await repository.apply_event(
                    session, transfer, None, last_broadcast_error=error and error[:2000]
                )


def build_senders(
    node_urls: Mapping[str, str], *, timeout_seconds: float = 10.0
) -> dict[str, RawTransactionSender]:
    """A client per network with a node URL (`SweepSettings.node_url(network)`): EVM
    JSON-RPC for ethereum/bsc, the java-tron HTTP API for tron; empty URLs are left out
    (that network's transfers wait, visible in `stablegate_outgoing_transfers`)."""
    senders: dict[str, RawTransactionSender] = {}
    for network, url in node_urls.items():
        if not url.strip():
            continue
        if network == "tron":
            senders[network] = TronClient(url.strip(), timeout_seconds=timeout_seconds)
        else:
            senders[network] = EvmClient(url.strip(), timeout_seconds=timeout_seconds)
    return senders
