"""The scanner's pure decisions: window size, next window, common ancestor, backfill start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stablegate_common.watcher.config import EngineConfig
from stablegate_common.watcher.planning import (
    AdaptiveWindow,
    BlockRange,
    backfill_start,
    confirmations,
    first_match,
    is_confirmed,
    next_window,
    split_range,
    stored_tail,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)


# --- adaptive window ----------------------------------------------------------------------


def test_window_halves_to_one_and_grows_back_to_the_maximum() -> None:
    window = AdaptiveWindow(500, 2000, grow_after=2)
    sizes = []
    for _ in range(10):
        window.shrink()
        sizes.append(window.size)
    assert sizes == [250, 125, 62, 31, 15, 7, 3, 1, 1, 1]
    grown = []
    for _ in range(24):
        window.success()
        grown.append(window.size)
    assert grown[:6] == [1, 2, 2, 4, 4, 8]
    assert grown[-1] == 2000
    assert max(grown) == 2000


def test_window_obeys_a_stated_provider_limit() -> None:
    window = AdaptiveWindow(500, 2000, grow_after=1)
    window.shrink(limit=100)
    assert window.size == 100
    window.shrink(limit=400)  # a larger limit never widens the ceiling
    assert window.size == 50
    for _ in range(10):
        window.success()
    assert window.size == 100


def test_a_failure_resets_the_growth_streak() -> None:
    window = AdaptiveWindow(8, 64, grow_after=3)
    window.success()
    window.success()
    window.shrink()
    window.success()
    window.success()
    assert window.size == 4
    window.success()
    assert window.size == 8


@given(st.lists(st.booleans(), max_size=200), st.integers(1, 5000), st.integers(1, 5))
def test_window_always_stays_within_one_and_the_maximum(
    outcomes: list[bool], maximum: int, grow_after: int
) -> None:
    window = AdaptiveWindow(max(1, maximum // 3), maximum, grow_after=grow_after)
    for ok in outcomes:
        if ok:
            window.success()
        else:
            window.shrink()
        assert 1 <= window.size <= maximum


@pytest.mark.parametrize(
    ("initial", "maximum", "grow_after"), [(0, 10, 1), (11, 10, 1), (5, 10, 0)]
)
def test_window_refuses_nonsense(initial: int, maximum: int, grow_after: int) -> None:
    with pytest.raises(ValueError, match=r"need|grow_after"):
        AdaptiveWindow(initial, maximum, grow_after=grow_after)


# --- next window --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cursor", "head", "size", "expected"),
    [
        (10, 10, 500, None),  # caught up
        (10, 8, 500, None),  # node behind the cursor
        (10, 11, 500, (11, 11)),
        (10, 2000, 500, (11, 510)),
        (-1, 0, 5, (0, 0)),  # genesis
        (99, 105, 1, (100, 100)),
    ],
)
def test_next_window(cursor: int, head: int, size: int, expected: tuple[int, int] | None) -> None:
    window = next_window(cursor, head, size)
    assert (None if window is None else (window.first, window.last)) == expected


@given(st.integers(-1, 10**6), st.integers(0, 10**6), st.integers(1, 5000))
def test_next_window_continues_the_cursor_and_never_passes_the_head(
    cursor: int, head: int, size: int
) -> None:
    window = next_window(cursor, head, size)
    if head <= cursor:
        assert window is None
        return
    assert window is not None
    assert window.first == cursor + 1
    assert window.last <= head
    assert 1 <= len(window) <= size


@given(st.integers(0, 10**6), st.integers(0, 3000), st.integers(1, 700))
def test_split_range_covers_every_block_once_in_order(first: int, extra: int, size: int) -> None:
    blocks = BlockRange(first, first + extra)
    chunks = split_range(blocks, size)
    numbers = [n for chunk in chunks for n in chunk.numbers()]
    assert numbers == list(blocks.numbers())
    assert all(len(chunk) <= size for chunk in chunks)


def test_stored_tail_keeps_the_newest_blocks() -> None:
    assert stored_tail(BlockRange(1, 500), 64) == BlockRange(437, 500)
    assert stored_tail(BlockRange(10, 20), 64) == BlockRange(10, 20)


def test_empty_range_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        BlockRange(5, 4)


# --- common ancestor ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("canonical", "expected"),
    [
        ({12: "c", 11: "b", 10: "a"}, 12),  # nothing changed
        ({12: "x", 11: "b", 10: "a"}, 11),  # the top block was replaced
        ({12: "x", 11: "y", 10: "a"}, 10),
        ({12: "x", 11: "y", 10: "z"}, None),  # deeper than what was compared
        ({11: "b"}, 11),  # 12 not compared (above the node's head)
        ({}, None),
    ],
)
def test_first_match(canonical: dict[int, str], expected: int | None) -> None:
    stored = [(12, "c"), (11, "b"), (10, "a")]
    assert first_match(stored, canonical) == expected


# --- confirmations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "block", "required", "count", "confirmed"),
    [
        (100, 100, 3, 1, False),
        (101, 100, 3, 2, False),
        (102, 100, 3, 3, True),
        (150, 100, 3, 51, True),
        (99, 100, 1, 0, False),  # the node fell behind the block
        (100, 100, 1, 1, True),
    ],
)
def test_confirmations(head: int, block: int, required: int, count: int, confirmed: bool) -> None:
    assert confirmations(head, block) == count
    assert is_confirmed(head, block, required) is confirmed


# --- backfill start -----------------------------------------------------------------------


def _stored(first: int, last: int, seconds_per_block: int = 12) -> list[tuple[int, datetime]]:
    return [
        (n, T0 + timedelta(seconds=seconds_per_block * (n - first))) for n in range(first, last + 1)
    ]


@pytest.mark.parametrize(
    ("announced_offset_s", "backfill_blocks", "expected"),
    [
        # Announced after the oldest kept block: start at the last block before it.
        (12 * 50, 1000, 1050),
        (12 * 50 + 5, 1000, 1050),
        # Announced before every kept block: fall back to backfill_blocks below the cursor.
        (-3600, 1000, 64),
        (-3600, 30, 1034),
        # The configured depth caps even a known announcement time.
        (12 * 10, 20, 1044),
        # Announced after the cursor's block: only the cursor's block is searched again.
        (12 * 500, 1000, 1063),
    ],
)
def test_backfill_start(announced_offset_s: int, backfill_blocks: int, expected: int) -> None:
    start = backfill_start(
        1063,
        backfill_blocks=backfill_blocks,
        announced_at=T0 + timedelta(seconds=announced_offset_s),
        stored_timestamps=_stored(1000, 1063),
        clock_skew=timedelta(0),
    )
    assert start == expected


def test_backfill_start_widens_by_the_clock_skew() -> None:
    start = backfill_start(
        1063,
        backfill_blocks=1000,
        announced_at=T0 + timedelta(seconds=12 * 50),
        stored_timestamps=_stored(1000, 1063),
        clock_skew=timedelta(seconds=60),
    )
    assert start == 1045


def test_backfill_start_never_goes_below_genesis() -> None:
    start = backfill_start(
        10, backfill_blocks=1000, announced_at=T0, stored_timestamps=[], clock_skew=timedelta(0)
    )
    assert start == 0


@given(
    st.integers(0, 10**6),
    st.integers(0, 5000),
    st.integers(-(10**5), 10**5),
    st.integers(0, 600),
)
def test_backfill_covers_every_block_after_the_announcement(
    cursor: int, backfill_blocks: int, offset: int, skew: int
) -> None:
    """Any kept block stamped at or after the announcement is searched (within the cap)."""
    stored = _stored(max(0, cursor - 63), cursor)
    announced = T0 + timedelta(seconds=offset)
    start = backfill_start(
        cursor,
        backfill_blocks=backfill_blocks,
        announced_at=announced,
        stored_timestamps=stored,
        clock_skew=timedelta(seconds=skew),
    )
    floor = max(0, cursor - backfill_blocks + 1)
    for number, stamped in stored:
        if stamped >= announced and number >= floor:
            assert number >= start


# --- configuration ------------------------------------------------------------------------


def test_engine_config_refuses_a_reorg_window_below_the_confirmation_depth() -> None:
    with pytest.raises(ValueError, match="reorg_window"):
        EngineConfig(confirmations=12, reorg_window=11)
