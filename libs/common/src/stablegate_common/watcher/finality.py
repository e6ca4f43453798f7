"""Finality by hash for chains whose client reports a finalized head (Tron's solidified
block; issue 13, item 4).

A height at or below the finalized head is final only for the block the finalized chain
has there: a full node serving a fork may show another block at that height. So a
pending transfer is confirmed only when its block hash is the finalized chain's, a
pending transfer whose block is not is rolled back like a reorg, and a window that holds
one is read again later.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from stablegate_common.chains import FinalizedHeadSource, TokenTransfer
from stablegate_common.db import Database
from stablegate_common.watcher import repository

log = logging.getLogger(__name__)


class FinalityCheck:
    def __init__(self, db: Database, network: str, source: FinalizedHeadSource) -> None:
        self.db = db
        self.network = network
        self.source = source

    async def hashes(
        self, head: int, finalized: int, transfers: Iterable[TokenTransfer] = ()
    ) -> dict[int, str]:
        """The finalized chain's hashes at the heights whose transfers may be confirmed
        now: pending ones and `transfers`, at or below min(finalized, head)."""
        deepest = min(finalized, head)
        async with self.db.sessions() as session:
            pending = await repository.pending_blocks(session, self.network, up_to=deepest)
        heights = {n for n, _ in pending}
        heights |= {t.block_number for t in transfers if t.block_number <= deepest}
        if not heights:
            return {}
        return await self.source.finalized_hashes(sorted(heights))

    async def forked_ancestor(self, head: int, finalized: int) -> int | None:
        """The block to roll back to when a pending transfer at or below the finalized
        height sits in a block the finalized chain does not have (the node's own headers
        cannot show that fork), else None."""
        final = await self.hashes(head, finalized)
        if not final:
            return None
        async with self.db.sessions() as session:
            pending = await repository.pending_blocks(session, self.network, up_to=max(final))
        off = [n for n, h in pending if n in final and final[n] != h]
        if not off:
            return None
        log.error(
            "a pending transfer's block is not on the finalized chain",
            extra={"network": self.network, "block": min(off), "finalized": finalized},
        )
        return min(off) - 1


def first_off_chain(transfers: Iterable[TokenTransfer], final: dict[int, str]) -> int | None:
    """The block of the first transfer at a finalized height whose block the finalized
    chain does not have, or None when every one agrees."""
    for t in transfers:
        if t.block_number in final and final[t.block_number] != t.block_hash:
            return t.block_number
    return None
