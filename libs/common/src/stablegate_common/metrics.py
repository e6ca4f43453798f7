"""Small Prometheus helpers shared by every service.

Metrics that belong to a feature are declared next to that feature; this module holds
only what is the same everywhere: the service's info metric and a timing helper.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import REGISTRY, CollectorRegistry, Histogram, Info

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
