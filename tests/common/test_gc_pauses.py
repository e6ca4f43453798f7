"""settle_heap (run by every service once started): what is alive is frozen out of later
collections, and every collection's pause is observed in stablegate_gc_pause_seconds."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from stablegate_common import metrics


@pytest.fixture
def settled() -> Iterator[None]:
    metrics.settle_heap()
    try:
        yield
    finally:
        gc.callbacks.remove(metrics._time_gc)
        gc.unfreeze()


def _pauses(generation: str) -> float:
    labels = {"generation": generation}
    return REGISTRY.get_sample_value("stablegate_gc_pause_seconds_count", labels) or 0.0


def test_the_live_heap_is_frozen_and_pauses_are_timed(settled: None) -> None:
    assert gc.get_freeze_count() > 1000  # modules, classes, schemas: all out of the way
    before = _pauses("2")
    gc.collect()
    assert _pauses("2") == before + 1
    metrics.settle_heap()  # a second call does not hook twice
    assert gc.callbacks.count(metrics._time_gc) == 1
