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
   operator sees why, and a stuck one is replaced, see `consumers.plan_stuck_replacements`);
4. before an EVM send, the nonce is checked: when the chain has used it and the node
   does not know our hash, another transaction took it, and once that nonce is final the
   transfer is SUPERSEDED (never mined; its bumps not yet signed too). A check the node
   cannot answer sends nothing (the error is recorded; next round asks again);
5. a `canceling` transfer (canceled after its request was issued) ends `canceled` once
   it provably cannot be mined: Tron, the solidified head is past its expiration and the
   solidified chain lacks it; EVM, its source's final nonce is past its own and the node
   does not know its hash (if it does, it was mined: the watcher books it).

"Final" for an EVM nonce is never the node's `finalized` tag (a dev chain or a provider
may answer it with latest): it is the count at an explicit height, the head less the
network's final depth (`final_depths`: the watcher's reorg window, the same finality its
`final` uses), every read of one check from the same node.

A dependency is met when it is confirmed, or replaced by a fee bump (followed through
`replaces`) that is confirmed; it is dead when every transaction of that chain ended
without one confirmed.

Sends go in nonce order per source (a lost nonce blocks every later one).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from stablegate_common.chains import (
    BlockHeader,
    BroadcastRejected,
    ChainError,
    RawTransactionSender,
    SolidifiedTxSource,
)
from stablegate_common.chains.evm import EvmClient
from stablegate_common.chains.tron import TronClient
from stablegate_common.db import Database
from stablegate_common.lifecycle import sleep_or_stop
from stablegate_gateway.outgoing import metrics, repository
from stablegate_gateway.outgoing.consumers import end_nonce, plan_stuck_replacements
from stablegate_gateway.outgoing.metrics import BROADCASTS, LOOP_CRASHES
from stablegate_gateway.outgoing.models import OutgoingTransfer
from stablegate_gateway.outgoing.states import OutgoingEvent, OutgoingState

log = logging.getLogger(__name__)

LOCK_KEY = "outgoing-broadcaster:{schema}"  # one broadcaster per gateway schema
_NOT_SENT = (
    OutgoingState.PLANNED.value,
    OutgoingState.AWAITING_SIGNATURE.value,
    OutgoingState.SIGNED.value,
)
_ENDED_UNCONFIRMED = (
    OutgoingState.FAILED.value,
    OutgoingState.CANCELED.value,
    OutgoingState.REPLACED.value,
)
Outcome = Literal["met", "dead", "pending"]


@runtime_checkable
class NonceReader(Protocol):
    """An EVM node as the broadcaster asks it whether a nonce is used up."""

    async def head(self) -> int: ...

    async def tx_known(self, tx_hash: str) -> bool: ...

    async def tx_receipt(self, tx_hash: str) -> object | None: ...

    async def transaction_count(self, address: str, block: str = "latest") -> int: ...


# `_unminable`'s answer for a canceling transfer that may have been mined unseen.
UNEXPLAINED: tuple[OutgoingEvent, str] = (OutgoingEvent.CANCELED, "unexplained")

# Blocks below the head before an EVM nonce counts as final, for a network not given in
# `final_depths` (the watcher's minimum reorg window).
DEFAULT_FINAL_DEPTH = 64


async def dependency_outcome(session: AsyncSession, depends_on: str) -> Outcome:
    """`met` when the dependency, or a fee bump of it (through `replaces`, any depth), is
    confirmed; `dead` when every one of them ended otherwise; else `pending`."""
    seen: set[str] = set()
    frontier = {depends_on}
    ended = True
    while frontier:
        rows = (
            await session.execute(
                select(OutgoingTransfer.id, OutgoingTransfer.state).where(
                    OutgoingTransfer.id.in_(frontier) | OutgoingTransfer.replaces.in_(frontier)
                )
            )
        ).all()
        seen |= frontier
        frontier = set()
        for transfer_id, state in rows:
            if state == OutgoingState.CONFIRMED:
                return "met"
            if state not in _ENDED_UNCONFIRMED:
                ended = False
            if transfer_id not in seen:
                frontier.add(transfer_id)
    return "dead" if ended else "pending"


class Broadcaster:
    def __init__(
        self,
        db: Database,
        senders: Mapping[str, RawTransactionSender],
        *,
        rebroadcast_seconds: float,
        stuck_seconds: float | None = None,
        native_symbols: Mapping[str, str] | None = None,
        final_depths: Mapping[str, int] | None = None,
        idle_seconds: float = 2.0,
    ) -> None:
        """`senders`: one client per network that has outgoing transfers. With
        `stuck_seconds`, each round also plans fee bumps for stuck EVM transfers.
        `final_depths`: per EVM network, how many blocks below the head a used nonce is
        final (DEFAULT_FINAL_DEPTH for one not given)."""
        self.db = db
        self.senders = dict(senders)
        self.rebroadcast = timedelta(seconds=rebroadcast_seconds)
        self.stuck_seconds = stuck_seconds
        self.native_symbols = dict(native_symbols or {})
        self.final_depths = dict(final_depths or {})
        for network, depth in self.final_depths.items():
            if depth < 1:
                raise ValueError(f"final_depths[{network!r}] must be at least 1, not {depth}")
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
                text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"),
                {"k": LOCK_KEY.format(schema=self.db.schema)},
            )
            if not locked:
                return None
            await self.fail_dependents()
            await self.settle_canceling()
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
        """DEPENDENCY_FAILED for what waits on a transfer that ended without being (or
        being replaced by) a confirmed one. Planned → canceled; awaiting its signature or
        signed → canceling (its bytes may exist: watched until they cannot be mined)."""
        dep = aliased(OutgoingTransfer)
        async with self.db.sessions() as session:
            candidates = (
                await session.execute(
                    select(OutgoingTransfer.id, OutgoingTransfer.depends_on)
                    .join(dep, dep.id == OutgoingTransfer.depends_on)
                    .where(OutgoingTransfer.state.in_(_NOT_SENT))
                    .where(dep.state.in_(_ENDED_UNCONFIRMED))
                )
            ).all()
            ids = [
                transfer_id
                for transfer_id, depends_on in candidates
                if depends_on is not None
                and await dependency_outcome(session, depends_on) == "dead"
            ]
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

    async def settle_canceling(self) -> list[str]:
        """`canceled` for the canceling transfers that provably cannot be mined now."""
        async with self.db.sessions() as session:
            rows = list(
                await session.scalars(
                    select(OutgoingTransfer)
                    .where(OutgoingTransfer.state == OutgoingState.CANCELING.value)
                    .where(OutgoingTransfer.block_number.is_(None))
                    .where(OutgoingTransfer.network.in_(list(self.senders)))
                    .order_by(OutgoingTransfer.created_at, OutgoingTransfer.seq)
                )
            )
        settled: list[str] = []
        solid_heads: dict[str, BlockHeader] = {}
        unexplained = dict.fromkeys(self.senders, 0)
        for row in rows:
            try:
                verdict = await self._unminable(row, solid_heads)
            except ChainError as exc:  # a node that cannot say: ask again next round
                log.warning(
                    "cannot settle a canceling transfer yet",
                    extra={"transfer_id": row.id, "error": repr(exc)},
                )
                continue
            if verdict == UNEXPLAINED:
                unexplained[row.network] += 1
                continue
            if verdict is None:
                continue
            async with self.db.transaction() as session:
                transfer = await repository.lock_transfer(session, row.id)
                if transfer.state == OutgoingState.CANCELING and transfer.block_number is None:
                    await repository.apply_event(
                        session, transfer, verdict[0], failure_reason=verdict[1]
                    )
                    settled.append(row.id)
        for network, count in unexplained.items():
            metrics.CANCELING_UNEXPLAINED.labels(network).set(count)
        return settled

    async def _unminable(
        self, row: OutgoingTransfer, solid_heads: dict[str, BlockHeader]
    ) -> tuple[OutgoingEvent, str] | None:
        """The event and reason that end a canceling transfer, or None while it may still
        be mined (UNEXPLAINED: it may have been, and nothing can tell)."""
        sender = self.senders[row.network]
        verdict: tuple[OutgoingEvent, str] | None = None
        if row.nonce is not None and isinstance(sender, NonceReader):
            final = await self._final_nonce(sender, row.network, row.source_address)
            if row.tx_hash is None:
                if final > row.nonce:
                    verdict = await self._hashless_nonce_used(row, final)
                return verdict
            known = await _evm_known(sender, row.tx_hash)
            if final > row.nonce and not known:
                verdict = (
                    OutgoingEvent.SUPERSEDED,
                    f"canceled; nonce {row.nonce} was used by another transaction "
                    f"(final nonce {final})",
                )
        elif row.expiration_ms is not None and isinstance(sender, SolidifiedTxSource):
            if row.network not in solid_heads:
                solid_heads[row.network] = await sender.finalized_header()
            head = solid_heads[row.network]
            head_ms = int(head.timestamp.timestamp() * 1000)
            if head_ms > row.expiration_ms and not (
                row.tx_hash is not None and await sender.solidified_tx_known(row.tx_hash)
            ):
                verdict = (
                    OutgoingEvent.EXPIRED,
                    f"canceled; expired unmined (expiration {row.expiration_ms} ms, "
                    f"solidified head block {head.number} at {head_ms} ms)",
                )
        return verdict

    async def _hashless_nonce_used(
        self, row: OutgoingTransfer, final: int
    ) -> tuple[OutgoingEvent, str] | None:
        """A canceling EVM transfer with no hash (canceled awaiting its signature) whose
        nonce is used, final. Settled when one of OUR transfers took it: confirmed, or
        reverted on chain (the nonce is spent all the same); its confirmation's
        `end_nonce` normally did already. Otherwise the likeliest taker is the canceled
        request itself, signed after the cancel and broadcast out of band: nothing here
        can tell, so it stays canceling, counted in
        `stablegate_outgoing_canceling_unexplained`, for an operator."""
        async with self.db.sessions() as session:
            taker = await session.scalar(
                select(OutgoingTransfer.id)
                .where(OutgoingTransfer.network == row.network)
                .where(OutgoingTransfer.source_address == row.source_address)
                .where(OutgoingTransfer.nonce == row.nonce)
                .where(OutgoingTransfer.id != row.id)
                .where(
                    (OutgoingTransfer.state == OutgoingState.CONFIRMED.value)
                    | (  # reverted on chain: the nonce is spent all the same
                        (OutgoingTransfer.state == OutgoingState.FAILED.value)
                        & OutgoingTransfer.block_number.is_not(None)
                    )
                )
                .limit(1)
            )
        if taker is not None:
            return (
                OutgoingEvent.SUPERSEDED,
                f"canceled; nonce {row.nonce} was taken by {taker}, mined and confirmed",
            )
        note = (
            f"nonce {row.nonce} was used (final nonce {final}) by a transaction that is not "
            "ours: maybe this canceled request, signed and broadcast elsewhere; an operator "
            "must check the source's transactions"
        )
        if row.last_broadcast_error != note:
            await self._record(row.id, note)
            log.warning(
                "a canceling transfer's nonce was used by an unknown transaction",
                extra={"transfer_id": row.id, "nonce": row.nonce, "network": row.network},
            )
        return UNEXPLAINED

    async def _due(self, now: datetime) -> list[str]:
        dep = aliased(OutgoingTransfer)
        resend = (
            (OutgoingTransfer.state == OutgoingState.BROADCAST)
            & OutgoingTransfer.block_number.is_(None)
            & (
                OutgoingTransfer.last_broadcast_at.is_(None)
                | (OutgoingTransfer.last_broadcast_at < now - self.rebroadcast)
            )
        )
        query = (
            select(OutgoingTransfer.id, OutgoingTransfer.state, OutgoingTransfer.depends_on)
            .add_columns(dep.state)
            .outerjoin(dep, dep.id == OutgoingTransfer.depends_on)
            .where(OutgoingTransfer.network.in_(list(self.senders)))
            .where(OutgoingTransfer.signed_hex.is_not(None))
            .where((OutgoingTransfer.state == OutgoingState.SIGNED) | resend)
            .order_by(
                OutgoingTransfer.network,
                OutgoingTransfer.source_address,
                OutgoingTransfer.nonce,
                OutgoingTransfer.created_at,
                OutgoingTransfer.seq,
            )
        )
        due: list[str] = []
        async with self.db.sessions() as session:
            for transfer_id, state, depends_on, dep_state in (await session.execute(query)).all():
                if (
                    state == OutgoingState.BROADCAST
                    or depends_on is None
                    or dep_state == OutgoingState.CONFIRMED
                    or (
                        dep_state == OutgoingState.REPLACED
                        and await dependency_outcome(session, depends_on) == "met"
                    )
                ):
                    due.append(transfer_id)
        return due

    async def send(self, transfer_id: str) -> bool:
        """Record BROADCAST_SENT and commit, then send; True when the node took it.

        First, an EVM transfer whose nonce the chain has used (by a transaction the node
        does not know as ours) is not sent: the node would answer "nonce too low", which
        the client takes for "already sent" (`_nonce_lost`)."""
        async with self.db.sessions() as session:
            found = await session.get(OutgoingTransfer, transfer_id)
        if found is not None and found.nonce is not None and found.tx_hash is not None:
            try:
                lost = await self._nonce_lost(
                    transfer_id, found.network, found.source_address, found.nonce, found.tx_hash
                )
            except ChainError as exc:
                # Fail closed: "nonce too low" from the send would count as sent, and a
                # transfer whose nonce is gone would sit in broadcast, bumped forever.
                lost = f"nonce check failed, not sent: {exc.message}"
            if lost is not None:
                BROADCASTS.labels(found.network, "error").inc()
                await self._record(transfer_id, lost)
                log.warning(
                    "broadcast skipped: the nonce is used, or cannot be checked",
                    extra={"transfer_id": transfer_id, "error": lost},
                )
                return False
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

    async def _nonce_lost(
        self, transfer_id: str, network: str, source: str, nonce: int, tx_hash: str
    ) -> str | None:
        """None when the nonce is free, or used by this very transaction (the node knows
        its hash). Otherwise another transaction took it: an error while that is not
        finalized (a reorg could still free it), and once it is, SUPERSEDED (never
        minable: `replaced`, or `canceled` for a bump not yet signed)."""
        sender = self.senders[network]
        if not isinstance(sender, NonceReader):
            return None
        latest = await sender.transaction_count(source, "latest")
        if latest <= nonce or await _evm_known(sender, tx_hash):
            return None
        final = await self._final_nonce(sender, network, source)
        if final <= nonce:
            return (
                f"nonce {nonce} already used by another transaction (latest nonce {latest}, "
                f"not final yet); the node does not know {tx_hash}"
            )
        reason = (
            f"nonce {nonce} of {source} was used by another transaction (final nonce "
            f"{final}); this one can never be mined"
        )
        # A sibling of ours the node knows is the one that took the nonce (its facts are
        # on their way, and its confirmation supersedes the rest): it is left alone.
        async with self.db.sessions() as session:
            siblings = (
                await session.execute(
                    select(OutgoingTransfer.id, OutgoingTransfer.tx_hash, OutgoingTransfer.state)
                    .where(OutgoingTransfer.network == network)
                    .where(OutgoingTransfer.source_address == source)
                    .where(OutgoingTransfer.nonce == nonce)
                    .where(OutgoingTransfer.id != transfer_id)
                )
            ).all()
        known = [
            sibling_id
            for sibling_id, sibling_hash, _ in siblings
            if sibling_hash is not None and await _evm_known(sender, sibling_hash)
        ]
        # A canceling sibling without a hash (canceled while awaiting its signature) may be
        # the very transaction that took the nonce, signed out of band: only our own
        # confirmed transfer explains it away (`settle_canceling`); until then it stays
        # canceling and counts as unexplained.
        unexplained = [
            sibling_id
            for sibling_id, sibling_hash, state in siblings
            if sibling_hash is None and state == OutgoingState.CANCELING
        ]
        async with self.db.transaction() as session:
            transfer = await repository.lock_transfer(session, transfer_id)
            if transfer.block_number is None and transfer.state in (
                OutgoingState.SIGNED,
                OutgoingState.BROADCAST,
            ):
                await repository.apply_event(
                    session, transfer, OutgoingEvent.SUPERSEDED, failure_reason=reason
                )
                await end_nonce(
                    session,
                    network=transfer.network,
                    source_address=source,
                    nonce=nonce,
                    keep=[transfer_id, *known, *unexplained],
                    reason=reason,
                )
        log.warning("a transfer lost its nonce", extra={"transfer_id": transfer_id})
        return reason

    async def _final_nonce(self, sender: NonceReader, network: str, source: str) -> int:
        """The source's next nonce as of the head less the network's final depth (0 while
        the chain is shorter than that): what no reorg the watcher allows for can undo."""
        depth = self.final_depths.get(network, DEFAULT_FINAL_DEPTH)
        height = await sender.head() - depth
        if height < 0:
            return 0
        return await sender.transaction_count(source, hex(height))

    async def _record(self, transfer_id: str, error: str | None) -> None:
        async with self.db.transaction() as session:
            transfer = await repository.lock_transfer(session, transfer_id)
            if transfer.last_broadcast_error != error:
                await repository.apply_event(
                    session, transfer, None, last_broadcast_error=error and error[:2000]
                )


def _evm_hash(tx_hash: str) -> str:
    return "0x" + tx_hash.lower().removeprefix("0x")


async def _evm_known(sender: NonceReader, tx_hash: str) -> bool:
    """The node has the transaction: a receipt (in a block), or in its pool or index."""
    full = _evm_hash(tx_hash)
    return await sender.tx_receipt(full) is not None or await sender.tx_known(full)


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
