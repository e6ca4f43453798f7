"""Pure decisions of the scanner, with no I/O: how wide the next log query is, which blocks
it covers, where a reorg's common ancestor lies, and where a backfill starts.

Kept apart from the engine so each rule can be tested against a table and with
hypothesis properties.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


class AdaptiveWindow:
    """The number of blocks per log query.

    Halves when the node refuses a window (too many results, range limit, timeout) down to
    one block, and doubles back after `grow_after` successes in a row, up to `maximum`.
    """

    def __init__(self, initial: int, maximum: int, *, grow_after: int = 3) -> None:
        if not 1 <= initial <= maximum:
            raise ValueError("need 1 <= initial <= maximum")
        if grow_after < 1:
            raise ValueError("grow_after must be at least 1")
        self.maximum = maximum
        self.grow_after = grow_after
        self.size = initial
        self._successes = 0

    def shrink(self, *, limit: int | None = None) -> None:
        """Halve the window. `limit` is a window length the provider stated it accepts:
        it also becomes the ceiling, so the window stops growing into the same refusal."""
        self.size = max(1, self.size // 2)
        if limit is not None and limit >= 1:
            self.maximum = min(self.maximum, limit)
            self.size = min(self.size, self.maximum)
        self._successes = 0

    def success(self) -> None:
        self._successes += 1
        if self._successes >= self.grow_after and self.size < self.maximum:
            self.size = min(self.maximum, self.size * 2)
            self._successes = 0


@dataclass(frozen=True)
class BlockRange:
    first: int
    last: int

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise ValueError(f"empty range {self.first}..{self.last}")

    def __len__(self) -> int:
        return self.last - self.first + 1

    def numbers(self) -> range:
        return range(self.first, self.last + 1)


def next_window(cursor: int, head: int, size: int) -> BlockRange | None:
    """The blocks to scan after `cursor`: at most `size`, never above `head`."""
    if size < 1:
        raise ValueError("window size must be at least 1")
    if head <= cursor:
        return None
    return BlockRange(cursor + 1, min(head, cursor + size))


def split_range(blocks: BlockRange, size: int) -> list[BlockRange]:
    """`blocks` cut into consecutive chunks of at most `size` blocks."""
    return [
        BlockRange(start, min(blocks.last, start + size - 1))
        for start in range(blocks.first, blocks.last + 1, size)
    ]


def stored_tail(window: BlockRange, reorg_window: int) -> BlockRange:
    """The part of a scanned window whose hashes are kept (the newest `reorg_window`)."""
    return BlockRange(max(window.first, window.last - reorg_window + 1), window.last)


def first_match(stored_desc: Sequence[tuple[int, str]], canonical: Mapping[int, str]) -> int | None:
    """The highest stored block whose hash the chain still has, among those compared.

    `stored_desc` is (number, hash) from the top down; blocks missing from `canonical`
    were not compared. A match proves every block below it is unchanged too, since each
    block's hash covers its parent's.
    """
    for number, stored_hash in stored_desc:
        if number in canonical and canonical[number] == stored_hash:
            return number
    return None


def confirmations(head: int, block_number: int) -> int:
    """Blocks on top of and including `block_number` (0 when the node is below it)."""
    return max(0, head - block_number + 1)


def is_confirmed(head: int, block_number: int, required: int) -> bool:
    return confirmations(head, block_number) >= required


def backfill_start(
    cursor: int,
    *,
    backfill_blocks: int,
    announced_at: datetime,
    stored_timestamps: Sequence[tuple[int, datetime]],
    clock_skew: timedelta,
) -> int:
    """First block to search for an address that was announced after scanning began.

    The address may have been paid from the moment it was announced (allocated), and
    blocks up to `cursor` were scanned without it. When the stored headers reach back
    beyond the announcement (minus clock skew), the search starts at the last block
    before it; otherwise it starts `backfill_blocks` below the cursor. Never below 0.
    """
    floor = max(0, cursor - backfill_blocks + 1)
    since = announced_at - clock_skew
    before = [number for number, ts in stored_timestamps if ts <= since]
    if before:
        return max(floor, max(before))
    return floor
