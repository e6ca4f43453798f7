"""Small Prometheus helpers shared by every service.

Metrics that belong to a feature are declared next to that feature; this module holds
only what is the same everywhere: the service's info metric, a timing helper and the
garbage collector's pauses.
"""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import REGISTRY, CollectorRegistry, Histogram, Info

GC_PAUSE = Histogram(
    "stablegate_gc_pause_seconds",
    "Pauses of Python's cyclic garbage collector, by generation: the event loop stands still "
    "meanwhile, so they show in every request and handler running at that moment",
    ["generation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
_gc_started: list[float] = []

# Weak keys: an id() could be reused by a later registry once a test's registry is freed.
_service_infos: weakref.WeakKeyDictionary[CollectorRegistry, Info] = weakref.WeakKeyDictionary()


def service_info(name: str, version: str, *, registry: CollectorRegistry = REGISTRY) -> Info:
    """`stablegate_service_info{service, version} 1`, so dashboards can tell releases apart.

    Safe to call again (tests build several apps in one process): the metric is registered
    once per registry and its value replaced.
    """
    info = _service_infos.get(registry)
    if info is None:
        info = Info("stablegate_service", "The running Stablegate service", registry=registry)
        _service_infos[registry] = info
    info.info({"service": name, "version": version})
    return info


@contextmanager
def time_block(histogram: Histogram, **labels: str) -> Iterator[None]:
    """Observe the wall time of the block, whether it returns or raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        (histogram.labels(**labels) if labels else histogram).observe(elapsed)


def _time_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started.append(time.perf_counter())
    elif _gc_started:
        GC_PAUSE.labels(str(info["generation"])).observe(time.perf_counter() - _gc_started.pop())


def settle_heap() -> None:
    """Once a service has started: collect, then freeze what is alive (modules, mappers,
    schemas, settings) so later collections of the oldest generation no longer walk it,
    and time every collection from now on (`stablegate_gc_pause_seconds`)."""
    gc.collect()
    gc.freeze()
    if _time_gc not in gc.callbacks:
        gc.callbacks.append(_time_gc)
