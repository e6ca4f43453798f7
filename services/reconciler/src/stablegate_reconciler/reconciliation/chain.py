"""Reading token balances from a chain node at one block, for every holding of a network.

The reconciler needs one call of a chain client: `balanceOf` at a given block. It reads
at the confirmed depth (head - confirmations + 1), the same depth at which watchers
report transfers as confirmed, so a payment still in flight is not a discrepancy. A
client that batches (`BatchBalances`: the EVM client, over JSON-RPC batches) answers a
hundred holders per HTTP request; the others one holder per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol

from stablegate_common.chains.base import BatchBalances
from stablegate_reconciler.reconciliation.rules import Holding


class BalanceReader(Protocol):
    async def head(self) -> int: ...

    async def token_balance(self, contract: str, address: str, block: int | None = None) -> int: ...

    async def close(self) -> None: ...


def confirmed_block(head: int, confirmations: int) -> int:
    """The newest block with `confirmations` blocks on top, counting itself."""
    return max(0, head - confirmations + 1)


async def read_balances(
    reader: BalanceReader,
    holdings: Sequence[Holding],
    contracts: Mapping[str, str],
    *,
    block: int,
    concurrency: int,
    batch_size: int = 100,
) -> dict[Holding, int]:
    """`balanceOf` of each holding at `block`; `contracts` maps asset symbol → contract.

    Raises the reader's ChainError when any read fails: a partial picture of a network is
    not compared, so no discrepancy is opened or resolved on half the data.
    """
    slots = asyncio.Semaphore(concurrency)

    if isinstance(reader, BatchBalances):
        batcher: BatchBalances = reader

        async def batch(chunk: Sequence[Holding]) -> list[tuple[Holding, int]]:
            queries = [(contracts[h.asset], h.address) for h in chunk]
            async with slots:
                amounts = await batcher.token_balances(queries, block=block)
            return list(zip(chunk, amounts, strict=True))

        chunks = [holdings[i : i + batch_size] for i in range(0, len(holdings), batch_size)]
        return {h: a for pairs in await asyncio.gather(*map(batch, chunks)) for h, a in pairs}

    async def one(holding: Holding) -> tuple[Holding, int]:
        async with slots:
            amount = await reader.token_balance(
                contracts[holding.asset], holding.address, block=block
            )
        return holding, amount

    return dict(await asyncio.gather(*(one(h) for h in holdings)))
