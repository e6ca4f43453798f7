"""Where rates come from: a static table (development, tests, or an operator who sets
prices by hand) and an HTTP feed in the JSON format of docs/pricing.md:

    GET {GATEWAY_RATES_URL}
    200 {"rates": {"USDT/USD": "1.0001", "EUR/USD": "1.0832", "ETH/USD": "3012.55"},
         "as_of": "2026-11-27T12:00:00Z", "source": "my-oracle"}

Rates are decimal strings; `as_of` is RFC 3339 with a time zone; `source` is optional.
A feed error (transport, status, shape) raises RateFeedError; the cache decides whether
the last good table is still fresh enough to use.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from stablegate_gateway.core.rates import InvalidRate, RateTable
from stablegate_gateway.pricing.cache import Clock, utc_now

SOURCE_MAX = 64  # the width of `payment_intents.rate_source`


class RateFeedError(Exception):
    """The feed did not give a usable table; the message says what was wrong."""


class RateProvider(Protocol):
    name: str

    async def fetch(self) -> RateTable: ...

    async def close(self) -> None: ...


class StaticRates:
    """A fixed table; always current, so it never goes stale."""

    def __init__(
        self, rates: Mapping[str, Decimal], *, name: str = "static", clock: Clock = utc_now
    ) -> None:
        self.name = name
        self._clock = clock
        try:
            self._table = RateTable.parse(rates, as_of=clock(), source=name)
        except InvalidRate as exc:
            raise ValueError(f"GATEWAY_RATES_STATIC: {exc}") from exc

    async def fetch(self) -> RateTable:
        return RateTable(self._table.rates, self._clock(), self.name)

    async def close(self) -> None:
        return None


class HttpRates:
    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 5.0,
        name: str = "",
        clock: Clock = utc_now,
    ) -> None:
        self.url = url
        self.name = (name or urlsplit(url).hostname or "http")[:SOURCE_MAX]
        self._clock = clock
        self._http = httpx.AsyncClient(
            timeout=timeout_seconds, headers={"Accept": "application/json"}
        )

    async def fetch(self) -> RateTable:
        try:
            response = await self._http.get(self.url)
            response.raise_for_status()
            body = response.json()
        except httpx.HTTPError as exc:
            raise RateFeedError(f"{self.url}: {exc!r}") from exc
        except ValueError as exc:
            raise RateFeedError(f"{self.url}: the answer is not JSON") from exc
        return self._table(body)

    def _table(self, body: Any) -> RateTable:
        if not isinstance(body, dict) or not isinstance(body.get("rates"), dict):
            raise RateFeedError(f"{self.url}: expected an object with a `rates` object")
        source = body.get("source", self.name)
        if not isinstance(source, str) or not source.strip() or len(source) > SOURCE_MAX:
            raise RateFeedError(f"{self.url}: `source` must be a short string")
        received = self._clock()
        # A feed whose clock runs ahead must not make its prices live longer.
        as_of = min(_timestamp(body.get("as_of"), self.url), received)
        try:
            return RateTable.parse(body["rates"], as_of=as_of, source=source.strip())
        except InvalidRate as exc:
            raise RateFeedError(f"{self.url}: {exc}") from exc

    async def close(self) -> None:
        await self._http.aclose()


def _timestamp(value: Any, url: str) -> datetime:
    if not isinstance(value, str):
        raise RateFeedError(f"{url}: `as_of` must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise RateFeedError(f"{url}: `as_of` {value!r} is not RFC 3339") from exc
    if parsed.tzinfo is None:
        raise RateFeedError(f"{url}: `as_of` {value!r} has no time zone")
    return parsed.astimezone(UTC)
