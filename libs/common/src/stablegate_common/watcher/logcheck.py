"""Is a window's log answer complete? (issue 13, item 2)

Headers and logs can come from different replicas of a load-balanced provider; a replica
that lacks a block answers a range query with no logs for it. A block whose header bloom
says a registered token may have logged a Transfer, yet returned no log (or logs of
another block at that height), is read again by its hash (EIP-234): a node that has the
block answers its logs (a false positive answers []), one that lacks it answers an error,
and then the window is read again later instead of advancing past the block.

On the hot path the extra work is a dict lookup per header and a bloom test for the
blocks without logs; the block-hash queries go out in one batch and only for suspects.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

from stablegate_common.chains import (
    BlockHeader,
    BlockLogsSource,
    ChainError,
    ChainUnavailable,
    TokenTransfer,
    TransferLogs,
)
from stablegate_common.chains.bloom import TransferBloom
from stablegate_common.watcher import metrics


class LogsMissing(Exception):
    """The node that answered has not got this block's logs yet: read the window again."""

    def __init__(self, block: int) -> None:
        super().__init__(f"logs of block {block} are missing")
        self.block = block


def suspects(
    headers: Sequence[BlockHeader], logs: TransferLogs, bloom: TransferBloom
) -> list[BlockHeader]:
    """Headers whose bloom says a Transfer of a registered token may be in the block,
    while the log query brought none back from that block."""
    return [
        h
        for h in headers
        if h.logs_bloom is not None
        and logs.blocks.get(h.number) != h.hash
        and bloom.may_contain(h.logs_bloom)
    ]


async def complete(
    client: BlockLogsSource,
    network: str,
    headers: Sequence[BlockHeader],
    logs: TransferLogs,
    *,
    bloom: TransferBloom,
    contracts: Sequence[str],
    recipients: Container[str],
) -> list[TokenTransfer]:
    """The window's transfers, with those of suspect blocks read by hash added.

    Raises LogsMissing when the node lacks a suspect block.
    """
    doubtful = suspects(headers, logs, bloom)
    if not doubtful:
        return logs.transfers
    try:
        every = await client.block_transfers([h.hash for h in doubtful], contracts, None)
    except ChainUnavailable:
        raise
    except ChainError as exc:
        metrics.LOG_CHECKS.labels(network, "missing").inc(len(doubtful))
        raise LogsMissing(doubtful[0].number) from exc
    recovered = {t.block_number for t in every}
    found = [t for t in every if t.to_address in recipients]
    metrics.LOG_CHECKS.labels(network, "recovered").inc(len(recovered))
    metrics.LOG_CHECKS.labels(network, "bloom_false_positive").inc(len(doubtful) - len(recovered))
    # A suspect block's logs replace whatever came back for its height (another fork's).
    heights = {h.number for h in doubtful}
    kept = [t for t in logs.transfers if t.block_number not in heights]
    return sorted(kept + found, key=lambda t: (t.block_number, t.log_index))
