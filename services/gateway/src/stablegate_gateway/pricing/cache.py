"""A value fetched from outside (a rate table, a gas price), reused for a TTL and refused
once it is older than a staleness limit.

A failed refresh keeps serving the last good value until it goes stale, and is not
retried on every request meanwhile, so a feed that is down is asked at most once per
retry interval. The age is measured from what the value says it describes (the feed's
`as_of`), not from when it was fetched: a feed that keeps answering with old prices is as
stale as one that does not answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

T = TypeVar("T")
Clock = Callable[[], datetime]

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class StaleValue(Exception):
    """Nothing fresh enough to use; the message says why (the last error, or the age)."""


class Cached(Generic[T]):
    def __init__(
        self,
        fetch: Callable[[], Awaitable[T]],
        *,
        label: str,
        as_of: Callable[[T], datetime],
        ttl_seconds: float,
        max_age_seconds: float,
        retry_seconds: float = 5.0,
        clock: Clock = utc_now,
    ) -> None:
        self._fetch = fetch
        self._label = label
        self._as_of = as_of
        self._ttl = timedelta(seconds=ttl_seconds)
        self._max_age = timedelta(seconds=max_age_seconds)
        self._retry = timedelta(seconds=min(retry_seconds, ttl_seconds))
        self._clock = clock
        self._value: T | None = None
        self._next_fetch: datetime | None = None
        self._last_error = ""
        # Only so that concurrent requests in this process share one fetch; each process
        # (replica) keeps its own cache, and nothing depends on them agreeing.
        self._refreshing = asyncio.Lock()

    async def get(self) -> T:
        if self._due():
            async with self._refreshing:
                if self._due():  # another request may have refreshed while this one waited
                    await self._refresh()
        return self._fresh()

    def _due(self) -> bool:
        return self._next_fetch is None or self._clock() >= self._next_fetch

    async def _refresh(self) -> None:
        try:
            value = await self._fetch()
        except Exception as exc:  # any failure of the source; the value may still be fresh
            self._last_error = f"{type(exc).__name__}: {exc}"
            self._next_fetch = self._clock() + self._retry
            log.warning("refresh failed", extra={"source": self._label, "error": self._last_error})
            return
        now = self._clock()
        self._value, self._last_error = value, ""
        # Old prices from a live feed are asked for again soon, like a failure.
        stale = now - self._as_of(value) > self._max_age
        self._next_fetch = now + (self._retry if stale else self._ttl)

    def _fresh(self) -> T:
        value = self._value
        if value is None:
            raise StaleValue(f"{self._label} has not answered yet ({self._last_error})")
        age = self._clock() - self._as_of(value)
        if age > self._max_age:
            why = f"; last error: {self._last_error}" if self._last_error else ""
            raise StaleValue(
                f"{self._label} is {int(age.total_seconds())} s old, over the "
                f"{int(self._max_age.total_seconds())} s limit{why}"
            )
        return value
