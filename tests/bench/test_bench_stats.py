"""The statistics, tables and profile summaries the benchmarks report with."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from bench.common import Spread, percentile, table
from bench.profile import summarize
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([4.0, 1.0, 3.0, 2.0], 75, 3.25),
        (list(map(float, range(1, 101))), 99, 99.01),
    ],
)
def test_percentile(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(percentile([], 50))


@given(st.lists(st.floats(-1e6, 1e6), min_size=1), st.floats(0, 100))
def test_a_percentile_lies_within_the_values(values: list[float], q: float) -> None:
    assert min(values) - 1e-6 <= percentile(values, q) <= max(values) + 1e-6


def test_spread_shows_median_and_range() -> None:
    spread = Spread.of([3.0, 1.0, 2.0, float("nan")])
    assert (spread.median, spread.low, spread.high, spread.rounds) == (2.0, 1.0, 3.0, 3)
    assert spread.show(1) == "2.0 (1.0..3.0)"
    assert Spread.of([0.25]).show(0, 1000) == "250"
    assert Spread.of([]).show() == "-"


def test_table_aligns_columns() -> None:
    text = table("T", ["name", "value"], [("a", 1), ("long name", 1234)])
    lines = text.splitlines()
    assert lines[0] == "T"
    assert lines[1] == "name       value"
    assert lines[3] == "a              1"
    assert lines[4] == "long name   1234"


def test_profile_summary_counts_inclusive_and_self(tmp_path: Path) -> None:
    stacks = tmp_path / "stacks.txt"
    stacks.write_text(
        "process 1;main (app/x.py:1);work (app/x.py:5);parse (lib/site-packages/json/y.py:9) 6\n"
        "process 1;main (app/x.py:1);work (app/x.py:7) 3\n"
        "process 1;main (app/x.py:1);idle (app/x.py:2) 1\n"
    )
    total, inclusive, own = summarize(stacks)
    assert total == 10
    shares = {h.frame: h.share for h in inclusive}
    assert shares["main (app/x.py)"] == 1.0
    assert shares["work (app/x.py)"] == 0.9  # both lines of `work` are one frame
    assert {h.frame: h.samples for h in own} == {
        "parse (json/y.py)": 6,
        "work (app/x.py)": 3,
        "idle (app/x.py)": 1,
    }
