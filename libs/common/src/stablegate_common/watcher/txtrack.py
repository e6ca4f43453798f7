"""Tracking the gateway's own outgoing transactions by hash (DESIGN.md §8, step 6).

The gateway announces every change of an outgoing transfer (`outgoing.transfer.updated`).
From its first `broadcast` on, the watcher of its network keeps a `tracked_transactions`
row (`TrackedTxConsumer`), and on every scanner tick (`OutgoingTxTracker.tick`) asks the
node for the receipt of each one not yet final:

- in a canonical block for the first time → `chain.tx.mined`;
- as deep as the network requires (EVM: `confirmations` blocks; Tron: the block is the
  solidified chain's) → `chain.tx.confirmed`; an EVM one is still read until it is past
  the reorg window, so a later reorg is seen;
- the block that held it left the canonical chain → `chain.tx.reorged` (with that block's
  fields), and it is tracked again: the same bytes may be mined in another block;
- in no block and unknown to the node → `chain.tx.not_found`, at most once per
  `not_found_every` per transaction (the gateway decides: re-broadcast, expire, replace).
  On Tron (a client with the solidity API) the solidified chain must not hold it either,
  and the head reported is the solidified one (`walletsolidity/getnowblock`): the
  gateway judges the expiration against a head that cannot change.

Tracked from `broadcast` and from `canceling` (canceled after signing: the bytes may be
mined by whoever holds them), again whenever the gateway reopens one.

A receipt says which block holds the transaction, and the node may say so of a block it
has since replaced: the receipt counts only when the block at that height is the one it
names (EVM: the header's hash; Tron: the block at that height lists the transaction).

The decision is the pure `decide()`; the rest reads the node and writes the rows and the
events (subject `"{network}:{tx_hash}"`, sequence from the row) in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from prometheus_client import Counter, Gauge
from sqlalchemy import ColumnElement, case, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.bus import add_many_to_outbox
from stablegate_common.chains import (
    BlockHeader,
    ChainClient,
    ChainError,
    FinalizedHeadSource,
    SolidifiedTxSource,
    TxReceipt,
    TxReceiptSource,
)
from stablegate_common.db import Database
from stablegate_common.events import Event, make_event, parse_payload
from stablegate_common.events.contracts import (
    ChainTxConfirmed,
    ChainTxFields,
    ChainTxMined,
    ChainTxNotFound,
    ChainTxReorged,
    OutgoingTransferUpdated,
)
from stablegate_common.watcher.models import ACTIVE_TRACK_STATUSES, TrackedTransaction

log = logging.getLogger(__name__)

CONSUMER = "outgoing-tx-tracking"
ROUTING_KEYS = (OutgoingTransferUpdated.event_type,)

TRACKED = Gauge(
    "stablegate_watcher_tracked_transactions",
    "Outgoing transactions a watcher reads receipts of (not final yet)",
    ["network"],
)
TX_EVENTS = Counter(
    "stablegate_watcher_outgoing_tx_events_total",
    "chain.tx.* events a watcher published about outgoing transactions",
    ["network", "event"],
)

TrackStatus = Literal["tracking", "mined", "confirmed", "final", "stopped"]
Emit = Literal["mined", "confirmed", "reorged", "not_found"]
# Gateway states after which the transaction will never be mined as planned.
_GIVEN_UP = frozenset({"canceled", "replaced"})
# Gateway states whose transaction may be mined: watched.
_WATCHED = frozenset({"broadcast", "canceling"})


# -- the pure decision -------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """The transaction in a canonical block, as read this tick."""

    block_number: int
    block_hash: str
    deep: bool  # deep enough to confirm (depth, or the finalized chain's block)
    final: bool  # past the reorg window (or finalized): no later reorg can drop it


@dataclass(frozen=True)
class Decision:
    status: TrackStatus
    emit: tuple[Emit, ...]


def decide(
    status: TrackStatus,
    block_hash: str | None,
    seen: Seen | None,
    *,
    unknown_to_node: bool = False,
) -> Decision:
    """What to publish and the new status for one tracked transaction.

    `block_hash`: the block it was in (statuses mined / confirmed). `unknown_to_node`:
    no receipt AND the node does not know it at all (and a not_found is due).
    """
    if status in ("final", "stopped"):
        return Decision(status, ())
    emit: list[Emit] = []
    if status in ("mined", "confirmed"):
        if seen is not None and seen.block_hash == block_hash:
            if status == "mined" and seen.deep:
                return Decision("final" if seen.final else "confirmed", ("confirmed",))
            if status == "confirmed" and seen.final:
                return Decision("final", ())
            return Decision(status, ())
        emit.append("reorged")  # gone from its block, or in another one now
    if seen is None:
        if not emit and unknown_to_node:
            emit.append("not_found")
        return Decision("tracking", tuple(emit))
    emit.append("mined")
    if seen.deep:
        emit.append("confirmed")
        return Decision("final" if seen.final else "confirmed", tuple(emit))
    return Decision("mined", tuple(emit))


# -- the gateway's announcements --------------------------------------------------------


class TrackedTxConsumer:
    """`handle(session, event)` for `idempotent(db, CONSUMER, consumer.handle)`: keeps the
    `tracked_transactions` rows of this network from `outgoing.transfer.updated`."""

    def __init__(self, network: str) -> None:
        self.network = network

    async def handle(self, session: AsyncSession, event: Event) -> None:
        if event.type != OutgoingTransferUpdated.event_type:
            log.warning("unexpected event type ignored", extra={"event_type": event.type})
            return
        update_ = parse_payload(event, OutgoingTransferUpdated)
        if update_.network != self.network or update_.tx_hash is None:
            return
        tx_hash = update_.tx_hash.lower()
        if update_.state in _WATCHED:
            await self._track(session, update_, tx_hash, event.sequence)
        elif update_.state in _GIVEN_UP or (
            update_.state == "failed" and update_.block_number is None
        ):
            # Canceled, replaced by another of its nonce, or expired unmined: never mined.
            await session.execute(
                update(TrackedTransaction)
                .where(TrackedTransaction.network == self.network)
                .where(TrackedTransaction.tx_hash == tx_hash)
                .where(TrackedTransaction.gateway_sequence < event.sequence)
                .values(status="stopped", gateway_sequence=event.sequence, updated_at=_now())
            )

    async def _track(
        self, session: AsyncSession, update_: OutgoingTransferUpdated, tx_hash: str, seq: int
    ) -> None:
        statement = insert(TrackedTransaction).values(
            network=self.network,
            tx_hash=tx_hash,
            transfer_id=update_.transfer_id,
            status="tracking",
            expiration_ms=update_.expiration_ms,
            gateway_sequence=seq,
            sequence=0,
        )
        # Known already: a re-broadcast or the gateway following our own reorg event. The
        # watcher's own view of the chain stands; only a stopped row is taken up again.
        table = TrackedTransaction.__table__
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["network", "tx_hash"],
                set_={
                    "gateway_sequence": seq,
                    "expiration_ms": update_.expiration_ms,
                    "status": _case_stopped_to_tracking(),
                    "updated_at": _now(),
                },
                where=table.c.gateway_sequence < seq,
            )
        )


def _case_stopped_to_tracking() -> ColumnElement[str]:
    column = TrackedTransaction.__table__.c.status
    return case((column == "stopped", "tracking"), else_=column)


# -- the tick ----------------------------------------------------------------------------


@dataclass
class _Reading:
    seen: Seen | None = None
    facts: dict[str, object] | None = None
    unknown: bool = False
    # This view of the chain cannot tell (a replica behind the block, or one that lacks
    # the receipt while the block that held it is still canonical): nothing changes.
    undecided: bool = False


@dataclass
class TrackerConfig:
    confirmations: int
    reorg_window: int
    not_found_every: timedelta = timedelta(seconds=60)
    batch: int = 200


@dataclass
class _Chain:
    head: int
    finalized: int | None
    headers: dict[int, BlockHeader] = field(default_factory=dict)
    solidified: BlockHeader | None = None  # Tron: the head a not_found reports


class OutgoingTxTracker:
    """Reads the receipts of this network's tracked transactions; one `tick()` per scan."""

    def __init__(
        self,
        db: Database,
        client: ChainClient,
        network: str,
        config: TrackerConfig,
        *,
        producer: str,
    ) -> None:
        if not isinstance(client, TxReceiptSource):
            raise TypeError(f"{network}: the chain client cannot read receipts by hash")
        self.db = db
        self.client = client
        self.receipts: TxReceiptSource = client
        self.network = network
        self.config = config
        self.producer = producer
        self._finality = client if isinstance(client, FinalizedHeadSource) else None
        self._solidity = client if isinstance(client, SolidifiedTxSource) else None

    async def tick(self, *, now: datetime | None = None) -> int:
        """Read every tracked transaction not yet final once; return the events queued."""
        now = now or datetime.now(UTC)
        async with self.db.sessions() as session:
            rows = await _active(session, self.network, self.config.batch)
        TRACKED.labels(self.network).set(len(rows))
        if not rows:
            return 0
        chain = _Chain(
            head=await self.client.head(),
            finalized=await self._finality.finalized_head() if self._finality else None,
        )
        readings = {row.tx_hash: await self._read(row, chain, now) for row in rows}
        queued = 0
        async with self.db.transaction() as session:
            for row in await _lock(session, self.network, list(readings)):
                queued += await self._apply(session, row, readings[row.tx_hash], chain, now)
        return queued

    async def _read(self, row: TrackedTransaction, chain: _Chain, now: datetime) -> _Reading:
        receipt = await self.receipts.tx_receipt(row.tx_hash)
        if receipt is not None:
            if receipt.block_number > chain.head:
                return _Reading(undecided=True)  # a node ahead of the one that gave the head
            header = await self._canonical(receipt, chain)
            if header is not None:
                return await self._seen(receipt, header, chain)
        if row.status in ("mined", "confirmed") and await self._block_stands(row, chain):
            # A reorg is the block that held it leaving the canonical chain, not one
            # provider's missing receipt (a load-balanced replica behind the others).
            return _Reading(undecided=True)
        due = row.status == "tracking" and (
            row.not_found_at is None or now - row.not_found_at >= self.config.not_found_every
        )
        if due and receipt is None and not await self.receipts.tx_known(row.tx_hash):
            if self._solidity is not None:
                if await self._solidity.solidified_tx_known(row.tx_hash):
                    return _Reading()  # solidified after all: this node lags
                if chain.solidified is None:
                    chain.solidified = await self._solidity.finalized_header()
            elif chain.head not in chain.headers:
                [chain.headers[chain.head]] = await self.client.headers([chain.head])
            return _Reading(unknown=True)
        return _Reading()

    async def _block_stands(self, row: TrackedTransaction, chain: _Chain) -> bool:
        """The block the row was seen in is still the canonical one at its height (or this
        view of the chain has not reached that height, so it cannot have replaced it)."""
        number, block_hash = row.block_number, row.block_hash
        if number is None or block_hash is None:
            return False
        if number > chain.head:
            return True
        if number not in chain.headers:
            [chain.headers[number]] = await self.client.headers([number])
        return chain.headers[number].hash == block_hash

    async def _canonical(self, receipt: TxReceipt, chain: _Chain) -> BlockHeader | None:
        """The canonical header at the receipt's height when it is the block the receipt
        names (and, on Tron, that block lists the transaction), else None."""
        number = receipt.block_number
        if number > chain.head:
            return None  # a node ahead of the one that answered the head: next tick
        if receipt.block_hash is None:
            # Tron: the receipt names no block; the block at its height must list the tx.
            listed, tx_ids = await self._block_listing(number)
            return listed if receipt.tx_hash in tx_ids else None
        if number not in chain.headers:
            [chain.headers[number]] = await self.client.headers([number])
        header = chain.headers[number]
        return header if header.hash == receipt.block_hash else None

    async def _block_listing(self, number: int) -> tuple[BlockHeader, tuple[str, ...]]:
        """The header and transaction ids of a block (the Tron client's `blocks`)."""
        blocks = getattr(self.client, "blocks", None)
        if blocks is None:
            raise ChainError(f"{self.network}: a receipt without a block hash, and no blocks()")
        [block] = await blocks([number])
        return block.header, tuple(block.tx_ids)

    async def _seen(self, receipt: TxReceipt, header: BlockHeader, chain: _Chain) -> _Reading:
        depth = max(0, chain.head - receipt.block_number + 1)
        if self._finality is not None:
            deep = False
            if chain.finalized is not None and receipt.block_number <= chain.finalized:
                final = await self._finality.finalized_hashes([receipt.block_number])
                deep = final.get(receipt.block_number) == header.hash
            final_now = deep  # the solidified chain does not revert
        else:
            deep = depth >= self.config.confirmations
            final_now = depth > self.config.reorg_window
        facts: dict[str, object] = {
            "network": self.network,
            "tx_hash": receipt.tx_hash,
            "block_number": receipt.block_number,
            "block_hash": header.hash,
            "block_timestamp": header.timestamp.isoformat(),
            "success": receipt.success,
            "gas_used": receipt.gas_used,
            "effective_gas_price": _opt_str(receipt.effective_gas_price),
            "energy_used": receipt.energy_used,
            "bandwidth_used": receipt.bandwidth_used,
            "fee_paid_base_units": str(receipt.fee_paid_base_units),
            "confirmations_required": self.config.confirmations,
        }
        seen = Seen(receipt.block_number, header.hash, deep, final_now)
        return _Reading(seen=seen, facts=facts)

    async def _apply(
        self,
        session: AsyncSession,
        row: TrackedTransaction,
        reading: _Reading,
        chain: _Chain,
        now: datetime,
    ) -> int:
        if reading.undecided:
            return 0
        status: TrackStatus = row.status  # type: ignore[assignment]
        decision = decide(status, row.block_hash, reading.seen, unknown_to_node=reading.unknown)
        events: list[Event] = []
        for kind in decision.emit:
            row.sequence += 1
            events.append(self._event(kind, row, reading, chain, now))
            TX_EVENTS.labels(self.network, kind).inc()
        if reading.seen is not None:
            row.block_number, row.block_hash = reading.seen.block_number, reading.seen.block_hash
            row.facts = reading.facts
        elif decision.status == "tracking":
            row.block_number, row.block_hash, row.facts = None, None, None
        if "not_found" in decision.emit:
            row.not_found_at = now
        if decision.status != status or events:
            row.status = decision.status
            row.updated_at = now
            log.info(
                "outgoing transaction tracked",
                extra={"network": self.network, "tx_hash": row.tx_hash}
                | {"status": decision.status, "events": list(decision.emit)},
            )
        await add_many_to_outbox(session, events)
        return len(events)

    def _event(
        self, kind: Emit, row: TrackedTransaction, reading: _Reading, chain: _Chain, now: datetime
    ) -> Event:
        subject = f"{self.network}:{row.tx_hash}"
        if kind == "not_found":
            head = chain.solidified or chain.headers.get(chain.head)
            payload: ChainTxFields | ChainTxNotFound = ChainTxNotFound(
                network=self.network,
                tx_hash=row.tx_hash,
                checked_at=now,
                head_block=head.number if head else chain.head,
                head_timestamp=head.timestamp if head else now,
            )
        else:
            facts = row.facts if kind == "reorged" else reading.facts
            assert facts is not None  # reorged: the stored block's; else: this reading's
            number = int(str(facts["block_number"]))
            confirmations = 0 if kind == "reorged" else max(0, chain.head - number + 1)
            cls = {"mined": ChainTxMined, "confirmed": ChainTxConfirmed}.get(kind, ChainTxReorged)
            payload = cls.model_validate({**facts, "confirmations": confirmations})
        return make_event(payload, producer=self.producer, subject=subject, sequence=row.sequence)


async def _active(session: AsyncSession, network: str, limit: int) -> Sequence[TrackedTransaction]:
    result = await session.scalars(
        select(TrackedTransaction)
        .where(TrackedTransaction.network == network)
        .where(TrackedTransaction.status.in_(ACTIVE_TRACK_STATUSES))
        .order_by(TrackedTransaction.added_at)
        .limit(limit)
    )
    return result.all()


async def _lock(
    session: AsyncSession, network: str, tx_hashes: list[str]
) -> Sequence[TrackedTransaction]:
    """The rows still active, locked: a consumer that stopped one meanwhile wins."""
    result = await session.scalars(
        select(TrackedTransaction)
        .where(TrackedTransaction.network == network)
        .where(TrackedTransaction.tx_hash.in_(tx_hashes))
        .where(TrackedTransaction.status.in_(ACTIVE_TRACK_STATUSES))
        .with_for_update()
    )
    return result.all()


def _opt_str(value: int | None) -> str | None:
    return None if value is None else str(value)


def _now() -> datetime:
    return datetime.now(UTC)
