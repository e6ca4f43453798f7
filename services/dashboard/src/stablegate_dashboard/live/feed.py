"""Which timeline entries a live stream still has to send.

The stream reads `intent_events` by `position` (an identity column). Positions are taken
when a row is inserted but become visible when its transaction commits, so a lower
position can appear after a higher one was read. The feed therefore re-reads a window of
LOOKBACK positions below its cursor on every poll and remembers what it already sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

LOOKBACK = 256

T = TypeVar("T")


class ChangeFeed:
    def __init__(self, cursor: int) -> None:
        self.cursor = max(0, cursor)
        self._seen: set[int] = set()
        self._started = False

    def read_from(self) -> int:
        """Read positions above this one."""
        return max(0, self.cursor - LOOKBACK)

    def fresh(self, rows: Iterable[tuple[int, T]]) -> list[T]:
        """The rows (position, item) not sent yet, oldest first. On the first read, what
        lies at or below the starting cursor was on the page already: not sent."""
        out: list[T] = []
        for position, item in sorted(rows, key=lambda r: r[0]):
            if position in self._seen:
                continue
            self._seen.add(position)
            if self._started or position > self.cursor:
                out.append(item)
        self._started = True
        if self._seen:
            self.cursor = max(self.cursor, max(self._seen))
        floor = self.read_from()
        self._seen = {p for p in self._seen if p > floor}
        return out
