"""Reads and writes of the watcher tables. Every function takes the caller's session: the
engine (or the consumer wrapper) owns the transaction, these only execute statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import delete, func, literal, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.chains import BlockHeader, TokenTransfer
from stablegate_common.watcher.models import (
    BlockHash,
    ObservedTransfer,
    ScanCursor,
    WatchedAddress,
)

ZERO_VALUE = "zero_value"
_INSERT_CHUNK = 1000


class CursorMoved(Exception):
    """The cursor is not where this scanner left it: another scanner wrote meanwhile."""


@dataclass(frozen=True)
class TransferRow:
    """What the events about one transfer need, read back from its row."""

    tx_hash: str
    log_index: int
    token_contract: str
    from_address: str
    to_address: str
    amount: int
    block_number: int
    block_hash: str
    block_timestamp: datetime
    status: str
    confirmations: int
    sequence: int


_ROW_COLUMNS = (
    ObservedTransfer.tx_hash,
    ObservedTransfer.log_index,
    ObservedTransfer.token_contract,
    ObservedTransfer.from_address,
    ObservedTransfer.to_address,
    ObservedTransfer.amount,
    ObservedTransfer.block_number,
    ObservedTransfer.block_hash,
    ObservedTransfer.block_timestamp,
    ObservedTransfer.status,
    ObservedTransfer.confirmations,
    ObservedTransfer.sequence,
)


def _rows(result: Iterable[Sequence[object]]) -> list[TransferRow]:
    return [TransferRow(*row) for row in result]  # type: ignore[arg-type]


# -- cursor ------------------------------------------------------------------------------


async def load_cursor(session: AsyncSession, network: str) -> int | None:
    value = await session.scalar(
        select(ScanCursor.last_scanned_block).where(ScanCursor.network == network)
    )
    return None if value is None else int(value)


async def create_cursor(session: AsyncSession, network: str, block: int) -> int:
    """Set the cursor unless one exists; return the cursor in force."""
    await session.execute(
        insert(ScanCursor)
        .values(network=network, last_scanned_block=block)
        .on_conflict_do_nothing(index_elements=[ScanCursor.network])
    )
    current = await load_cursor(session, network)
    if current is None:
        raise CursorMoved(f"{network}: cursor row vanished while it was created")
    return current


async def move_cursor(session: AsyncSession, network: str, *, expected: int, to: int) -> None:
    """Compare-and-set: the update takes the row lock, so two scanners that raced each see
    the other's write and only the first one wins."""
    moved = await session.scalar(
        update(ScanCursor)
        .where(ScanCursor.network == network, ScanCursor.last_scanned_block == expected)
        .values(last_scanned_block=to, updated_at=func.now())
        .returning(ScanCursor.network)
    )
    if moved is None:
        raise CursorMoved(f"{network}: cursor is no longer {expected}")


# -- block hashes ------------------------------------------------------------------------


async def stored_hashes(session: AsyncSession) -> list[tuple[int, str]]:
    """(number, hash) of every kept block, newest first."""
    result = await session.execute(
        select(BlockHash.number, BlockHash.hash).order_by(BlockHash.number.desc())
    )
    return [(int(n), str(h)) for n, h in result]


async def stored_timestamps(session: AsyncSession) -> list[tuple[int, datetime]]:
    result = await session.execute(
        select(BlockHash.number, BlockHash.timestamp).order_by(BlockHash.number)
    )
    return [(int(n), ts) for n, ts in result]


async def stored_hash(session: AsyncSession, number: int) -> str | None:
    return await session.scalar(select(BlockHash.hash).where(BlockHash.number == number))


async def hashes_at(session: AsyncSession, numbers: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    result = await session.execute(
        select(BlockHash.number, BlockHash.hash).where(BlockHash.number.in_(wanted))
    )
    return {int(n): str(h) for n, h in result}


async def store_headers(session: AsyncSession, headers: Sequence[BlockHeader]) -> None:
    for start in range(0, len(headers), _INSERT_CHUNK):
        chunk = headers[start : start + _INSERT_CHUNK]
        stmt = insert(BlockHash).values(
            [
                {
                    "number": h.number,
                    "hash": h.hash,
                    "parent_hash": h.parent_hash,
                    "timestamp": h.timestamp,
                }
                for h in chunk
            ]
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[BlockHash.number],
                set_={
                    "hash": stmt.excluded.hash,
                    "parent_hash": stmt.excluded.parent_hash,
                    "timestamp": stmt.excluded.timestamp,
                },
            )
        )


async def prune_hashes(session: AsyncSession, *, below: int) -> None:
    await session.execute(delete(BlockHash).where(BlockHash.number < below))


async def drop_hashes(session: AsyncSession, *, above: int) -> None:
    await session.execute(delete(BlockHash).where(BlockHash.number > above))


# -- transfers ---------------------------------------------------------------------------


# One statement for a whole scan's transfers: every column travels as one array parameter
# (encoded by asyncpg in C) and `unnest` turns them back into rows. Per row this costs a
# fraction of a multi-row VALUES, whose parameters SQLAlchemy binds one by one in Python.
_RECORD = text(
    """
    INSERT INTO observed_transfers AS t (
        network, tx_hash, log_index, token_contract, from_address, to_address, amount,
        block_number, block_hash, block_timestamp, status, ignore_reason, confirmations,
        sequence
    )
    SELECT CAST(:network AS text), r.*, 1 FROM unnest(
        CAST(:tx_hash AS text[]), CAST(:log_index AS integer[]),
        CAST(:token_contract AS text[]), CAST(:from_address AS text[]),
        CAST(:to_address AS text[]), CAST(:amount AS numeric[]),
        CAST(:block_number AS bigint[]), CAST(:block_hash AS text[]),
        CAST(:block_timestamp AS timestamptz[]), CAST(:status AS text[]),
        CAST(:ignore_reason AS text[]), CAST(:confirmations AS integer[])
    ) AS r
    ON CONFLICT (network, tx_hash, log_index) DO UPDATE SET
        token_contract = excluded.token_contract,
        from_address = excluded.from_address,
        to_address = excluded.to_address,
        amount = excluded.amount,
        status = excluded.status,
        ignore_reason = excluded.ignore_reason,
        block_number = excluded.block_number,
        block_hash = excluded.block_hash,
        block_timestamp = excluded.block_timestamp,
        confirmations = excluded.confirmations,
        sequence = t.sequence + 1,
        confirmed_at = NULL,
        updated_at = now()
    WHERE t.status = 'reverted'
    RETURNING t.tx_hash, t.log_index, t.token_contract, t.from_address, t.to_address,
        t.amount, t.block_number, t.block_hash, t.block_timestamp, t.status,
        t.confirmations, t.sequence
    """
)


async def record_transfers(
    session: AsyncSession,
    network: str,
    transfers: Sequence[TokenTransfer],
    timestamps: dict[int, datetime],
    head: int,
) -> list[TransferRow]:
    """Insert transfers idempotently; return the rows that are new or came back, in chain
    order (block, then log index).

    A transfer already recorded is left alone, except one that a reorg reverted: seen
    again on the canonical chain, it returns to pending with the next sequence number and
    takes every fact the chain shows now (a re-executed transaction can emit another
    token, sender, recipient or amount at the same log index).
    Zero-value transfers are stored as ignored (address poisoning, DESIGN.md §2).
    """
    if not transfers:
        return []
    zero = [t.amount_base_units == 0 for t in transfers]
    params = {
        "network": network,
        "tx_hash": [t.tx_hash for t in transfers],
        "log_index": [t.log_index for t in transfers],
        "token_contract": [t.token_contract for t in transfers],
        "from_address": [t.from_address for t in transfers],
        "to_address": [t.to_address for t in transfers],
        "amount": [Decimal(t.amount_base_units) for t in transfers],
        "block_number": [t.block_number for t in transfers],
        "block_hash": [t.block_hash for t in transfers],
        "block_timestamp": [timestamps[t.block_number] for t in transfers],
        "status": ["ignored" if z else "pending" for z in zero],
        "ignore_reason": [ZERO_VALUE if z else None for z in zero],
        "confirmations": [max(0, head - t.block_number + 1) for t in transfers],
    }
    result = await session.execute(_RECORD, params)
    rows = [
        TransferRow(
            tx_hash=r.tx_hash,
            log_index=r.log_index,
            token_contract=r.token_contract,
            from_address=r.from_address,
            to_address=r.to_address,
            amount=int(r.amount),
            block_number=r.block_number,
            block_hash=r.block_hash,
            block_timestamp=r.block_timestamp,
            status=r.status,
            confirmations=r.confirmations,
            sequence=r.sequence,
        )
        for r in result
    ]
    rows.sort(key=lambda r: (r.block_number, r.log_index))
    return rows


async def pending_blocks(
    session: AsyncSession, network: str, *, up_to: int
) -> set[tuple[int, str]]:
    """(number, hash) of the blocks holding pending transfers at or below `up_to`."""
    result = await session.execute(
        select(ObservedTransfer.block_number, ObservedTransfer.block_hash)
        .where(
            ObservedTransfer.network == network,
            ObservedTransfer.status == "pending",
            ObservedTransfer.block_number <= up_to,
        )
        .distinct()
    )
    return {(int(n), str(h)) for n, h in result}


async def confirm_transfers(
    session: AsyncSession,
    network: str,
    *,
    head: int,
    required: int,
    finalized: int | None = None,
    finalized_hashes: Mapping[int, str] | None = None,
) -> list[TransferRow]:
    """Promote pending transfers with `required` confirmations at `head`, or, when the
    chain reports a `finalized` block, those at or below it whose block is the finalized
    chain's block at that height (`finalized_hashes`; a height missing there confirms
    nothing); return them."""
    # A solidity node ahead of the full node must not confirm above the head we count from.
    deepest = min(finalized, head) if finalized is not None else head - required + 1
    conditions = [
        ObservedTransfer.network == network,
        ObservedTransfer.status == "pending",
        ObservedTransfer.block_number <= deepest,
    ]
    if finalized is not None:
        final = sorted((n, h) for n, h in (finalized_hashes or {}).items() if n <= deepest)
        if not final:
            return []
        # The height alone is not finality: a block the scanned node has on a fork is not.
        conditions.append(
            tuple_(ObservedTransfer.block_number, ObservedTransfer.block_hash).in_(final)
        )
    result = await session.execute(
        update(ObservedTransfer)
        .where(*conditions)
        .values(
            status="confirmed",
            confirmations=literal(head + 1) - ObservedTransfer.block_number,
            sequence=ObservedTransfer.sequence + 1,
            confirmed_at=func.now(),
            updated_at=func.now(),
        )
        .returning(*_ROW_COLUMNS)
    )
    return sorted(_rows(result), key=lambda r: (r.block_number, r.log_index))


async def count_pending_confirmations(session: AsyncSession, network: str, *, head: int) -> None:
    """Keep `confirmations` of pending transfers current (for operators; no events)."""
    await session.execute(
        update(ObservedTransfer)
        .where(
            ObservedTransfer.network == network,
            ObservedTransfer.status == "pending",
            ObservedTransfer.block_number <= head,
        )
        .values(confirmations=literal(head + 1) - ObservedTransfer.block_number)
    )


async def revert_transfers(session: AsyncSession, network: str, *, above: int) -> list[TransferRow]:
    """Mark transfers in blocks above `above` reverted; forget ignored ones there (a
    rescan records them again if they are still on the chain)."""
    await session.execute(
        delete(ObservedTransfer).where(
            ObservedTransfer.network == network,
            ObservedTransfer.status == "ignored",
            ObservedTransfer.block_number > above,
        )
    )
    result = await session.execute(
        update(ObservedTransfer)
        .where(
            ObservedTransfer.network == network,
            ObservedTransfer.status.in_(("pending", "confirmed")),
            ObservedTransfer.block_number > above,
        )
        .values(
            status="reverted",
            confirmations=0,
            sequence=ObservedTransfer.sequence + 1,
            confirmed_at=None,
            updated_at=func.now(),
        )
        .returning(*_ROW_COLUMNS)
    )
    return sorted(_rows(result), key=lambda r: (r.block_number, r.log_index))


async def transfer_blocks(
    session: AsyncSession, network: str, *, below: int, down_to: int
) -> dict[int, str]:
    """Block number → hash of the blocks that hold live transfers in [down_to, below)."""
    result = await session.execute(
        select(ObservedTransfer.block_number, ObservedTransfer.block_hash)
        .where(
            ObservedTransfer.network == network,
            ObservedTransfer.status.in_(("pending", "confirmed")),
            ObservedTransfer.block_number < below,
            ObservedTransfer.block_number >= down_to,
        )
        .distinct()
    )
    return {int(n): str(h) for n, h in result}


# -- watch set ---------------------------------------------------------------------------


async def add_watched(
    session: AsyncSession,
    network: str,
    addresses: Sequence[str],
    *,
    source: str,
    announced_at: datetime,
) -> list[str]:
    """Add addresses to the watch set; return those that were not in it yet."""
    added: list[str] = []
    cursor = (
        select(ScanCursor.last_scanned_block).where(ScanCursor.network == network).scalar_subquery()
    )
    for start in range(0, len(addresses), _INSERT_CHUNK):
        chunk = sorted(set(addresses[start : start + _INSERT_CHUNK]))
        result = await session.scalars(
            insert(WatchedAddress)
            .values(
                [
                    {
                        "address": a,
                        "source": source,
                        "announced_at": announced_at,
                        "added_at_block": cursor,
                    }
                    for a in chunk
                ]
            )
            .on_conflict_do_nothing(index_elements=[WatchedAddress.address])
            .returning(WatchedAddress.address)
        )
        added.extend(result)
    return added


async def all_watched(session: AsyncSession) -> set[str]:
    return set(await session.scalars(select(WatchedAddress.address)))


async def backfill_due(session: AsyncSession, *, limit: int) -> list[tuple[str, datetime]]:
    """Addresses not yet searched for in already scanned blocks, oldest announcement first."""
    result = await session.execute(
        select(WatchedAddress.address, WatchedAddress.announced_at)
        .where(WatchedAddress.backfilled_at.is_(None))
        .order_by(WatchedAddress.announced_at)
        .limit(limit)
    )
    return [(str(a), ts) for a, ts in result]


async def mark_backfilled(session: AsyncSession, addresses: Sequence[str]) -> None:
    await session.execute(
        update(WatchedAddress)
        .where(WatchedAddress.address.in_(list(addresses)))
        .values(backfilled_at=func.now())
    )
