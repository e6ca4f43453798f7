"""The provider pool's head with a quorum above one, against in-memory providers: the
newest block that `quorum` providers have with the same hash, found by stepping down
from the highest height that many report. Table-driven cases of lag and forks, and a
property over random ones: the head is always a block `quorum` providers share, and on
one chain it is exactly the `quorum`-th highest head."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stablegate_common.chains import ChainUnavailable
from stablegate_common.chains.base import BlockHeader, BlockNotFound, TokenTransfer
from stablegate_common.chains.pool import PoolPolicy, Provider, ProviderPool
from tests.conftest import unique

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def block_hash(chain: str, number: int, fork_at: int | None) -> str:
    """The hash of `number` on `chain`: the main chain's below `fork_at`, its own above."""
    own = fork_at is not None and number >= fork_at
    return f"{chain if own else 'main'}:{number}"


@dataclass
class FakeNode:
    """One provider: a head, a chain (main, or a fork from `fork_at` on) and the heights
    its replicas answer `null` for a number of times (a lagging replica behind it)."""

    head_at: int
    chain: str = "main"
    fork_at: int | None = None
    misses: dict[int, int] = field(default_factory=dict)
    asked: list[int] = field(default_factory=list)

    async def head(self) -> int:
        return self.head_at

    async def headers(self, numbers: Sequence[int]) -> list[BlockHeader]:
        found = []
        for n in numbers:
            self.asked.append(n)
            if n > self.head_at or self.misses.get(n, 0) > 0:
                self.misses[n] = max(0, self.misses.get(n, 0) - 1)
                raise BlockNotFound(n)
            parent = block_hash(self.chain, n - 1, self.fork_at)
            found.append(BlockHeader(n, block_hash(self.chain, n, self.fork_at), parent, EPOCH))
        return found

    async def transfers(
        self, from_block: int, to_block: int, contracts: Sequence[str]
    ) -> list[TokenTransfer]:
        return []

    async def token_balance(self, contract: str, address: str, block: int | None = None) -> int:
        return 0

    async def token_decimals(self, contract: str) -> int:
        return 6

    async def close(self) -> None:
        return None


def pool_of(nodes: Sequence[FakeNode], quorum: int) -> ProviderPool[FakeNode]:
    providers = [Provider(f"p{i}", node, weight=1.0) for i, node in enumerate(nodes)]
    return ProviderPool(unique("net"), providers, PoolPolicy(quorum=quorum))


def fork_errors(pool: ProviderPool[FakeNode]) -> list[str]:
    """The providers put in back-off for being outvoted on a hash."""
    return [p.name for p in pool.providers if p.down_until > 0]


H = 100
CASES = [
    # (what, nodes, quorum, expected head, providers outvoted)
    ("all at the head", [FakeNode(H), FakeNode(H), FakeNode(H)], 2, H, []),
    ("lags 0, 1, 3, quorum 2", [FakeNode(H), FakeNode(H - 1), FakeNode(H - 3)], 2, H - 1, []),
    ("lags 0, 1, 3, quorum 3", [FakeNode(H), FakeNode(H - 1), FakeNode(H - 3)], 3, H - 3, []),
    (
        "one on a fork at the same height, the third behind",
        [FakeNode(H, "b", fork_at=H - 5), FakeNode(H), FakeNode(H - 2)],
        2,
        H - 2,
        ["p0"],
    ),
    (
        "a fork shallower than the lag: all three agree below it",
        [FakeNode(H, "b", fork_at=H - 1), FakeNode(H), FakeNode(H - 3)],
        2,
        H - 3,
        [],
    ),
    (
        "a fork ahead of two that agree",
        [FakeNode(H + 2, "b", fork_at=H - 4), FakeNode(H), FakeNode(H)],
        2,
        H,
        ["p0"],
    ),
    (
        "a replica that lacks its own head (asked twice)",
        [FakeNode(H, misses={H: 2}), FakeNode(H), FakeNode(H - 4)],
        2,
        H - 1,
        [],
    ),
    (
        "a lagging replica answers once, the retry finds the block",
        [FakeNode(H, misses={H: 1}), FakeNode(H), FakeNode(H - 4)],
        2,
        H,
        [],
    ),
]


@pytest.mark.parametrize(
    ("nodes", "quorum", "expected", "outvoted"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_the_head_is_the_newest_block_a_quorum_shares(
    nodes: list[FakeNode], quorum: int, expected: int, outvoted: list[str]
) -> None:
    pool = pool_of(nodes, quorum)
    assert await pool.head() == expected
    assert fork_errors(pool) == outvoted
    # The window that ends at the head needs no second vote, and any provider that has
    # the agreed block may serve it.
    asked = [len(n.asked) for n in nodes]
    headers = await pool.headers([expected - 1, expected])
    assert headers[-1].hash == block_hash("main", expected, None)
    assert sum(len(n.asked) for n in nodes) == sum(asked) + 2


async def test_two_forks_and_no_majority_give_no_head() -> None:
    """Quorum two of two on different forks: neither moves the watcher, neither is
    blamed (which one is wrong is not known)."""
    pool = pool_of([FakeNode(H, "a", fork_at=H - 30), FakeNode(H, "b", fork_at=H - 30)], 2)
    with pytest.raises(ChainUnavailable, match="same hash at 2 providers"):
        await pool.head()
    assert fork_errors(pool) == []


async def test_a_quorum_of_all_with_one_on_a_deep_fork_gives_no_head() -> None:
    """The fork is deeper than the heights asked: the pool stops stepping down and says
    so, rather than walk the chain down to where the fork began."""
    nodes = [FakeNode(H, "b", fork_at=H - 20), FakeNode(H), FakeNode(H)]
    pool = pool_of(nodes, 3)
    with pytest.raises(ChainUnavailable, match="same hash at 3 providers"):
        await pool.head()
    assert fork_errors(pool) == []
    assert min(nodes[1].asked) > H - 20


@st.composite
def providers(draw: st.DrawFn) -> tuple[list[FakeNode], int]:
    count = draw(st.integers(2, 5))
    nodes = []
    for i in range(count):
        head = draw(st.integers(H - 8, H))
        forked = draw(st.booleans())
        fork_at = draw(st.integers(H - 10, H)) if forked else None
        misses = draw(st.dictionaries(st.integers(H - 8, H), st.integers(1, 3), max_size=2))
        nodes.append(FakeNode(head, f"f{i}" if forked else "main", fork_at, misses))
    return nodes, draw(st.integers(1, count))


@settings(max_examples=200, deadline=None)
@given(providers())
def test_a_head_is_always_a_block_the_quorum_shares(case: tuple[list[FakeNode], int]) -> None:
    nodes, quorum = case
    on_main = [n for n in nodes if n.fork_at is None and not n.misses]
    expected = sorted((n.head_at for n in on_main), reverse=True)
    pool = pool_of(nodes, quorum)
    try:
        head = asyncio.run(pool.head())
    except ChainUnavailable:
        # Only where the quorum cannot be met by providers on one chain without misses.
        assert quorum > 1
        assert len(on_main) < len(nodes)
        return
    if quorum == 1:
        return  # by height: the highest head, the fork check is not asked for
    having = {}
    for node in nodes:
        if node.head_at >= head:
            hash_there = block_hash(node.chain, head, node.fork_at)
            having[hash_there] = having.get(hash_there, 0) + 1
    assert max(having.values()) >= quorum
    if len(on_main) == len(nodes):
        assert head == expected[quorum - 1]
