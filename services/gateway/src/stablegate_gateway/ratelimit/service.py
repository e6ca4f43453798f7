"""Token buckets per API key, kept in PostgreSQL so every gateway replica shares them.

One statement takes a token: an `INSERT … ON CONFLICT DO UPDATE … RETURNING` on the key's
row that refills the bucket for the time elapsed (by the database's clock, the one clock
all replicas share) and takes one token if there is one. The row lock it holds lasts one
statement, so requests of one key queue for microseconds and other keys not at all. The
same statement checks that the key is still active (it proposes its row only then), so
an authenticated request pays one round trip for both, outside any transaction.

PostgreSQL rather than Redis: the gateway already needs it on every request (the API key
lookup), so rate limiting adds no service to run, secure, monitor or wait for at start,
and no new way to fail; the cost is one indexed single-row write per request, on an
UNLOGGED table (no WAL). Redis would be the choice past a few thousand requests per
second on one key.

Limits come from `GATEWAY_RATE_LIMIT_*`: a default bucket (100 requests/s, bursts of
200) and overrides per merchant id or API key id, the key's override winning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from stablegate_common.core.errors import DomainError
from stablegate_gateway.settings import GatewayConfig, RateLimitRule

LIMIT_HEADER = "RateLimit-Limit"
REMAINING_HEADER = "RateLimit-Remaining"
RESET_HEADER = "RateLimit-Reset"
RETRY_AFTER_HEADER = "Retry-After"

REFUSED = Counter(
    "stablegate_rate_limited_requests_total", "Requests refused with 429 by the rate limit"
)

# The refilled level, by the database's clock (`b` is the row before this statement).
_REFILLED = (
    "LEAST(CAST(:burst AS integer), b.tokens + :rate * GREATEST(0, "
    "EXTRACT(EPOCH FROM statement_timestamp() - b.updated_at)::double precision))"
)
_TAKE = text(
    f"""
    INSERT INTO rate_limit_buckets AS b (bucket, tokens, allowed, updated_at)
    SELECT CAST(:bucket AS text), CAST(:burst AS integer) - 1, true, statement_timestamp()
    WHERE EXISTS (
        SELECT 1 FROM api_keys k
        WHERE k.id = CAST(:bucket AS text) AND k.merchant_id = CAST(:merchant_id AS text)
            AND k.revoked_at IS NULL
    )
    ON CONFLICT (bucket) DO UPDATE SET
        allowed = {_REFILLED} >= 1,
        tokens = {_REFILLED} - CASE WHEN {_REFILLED} >= 1 THEN 1 ELSE 0 END,
        updated_at = statement_timestamp()
    RETURNING tokens, allowed
    """  # noqa: S608 - the interpolated text is a constant above, not input
)


class RateLimited(DomainError):
    """Too many requests for this API key; retry after `retry_after_seconds`."""

    code = "rate_limit_exceeded"

    def __init__(self, decision: RateLimitDecision) -> None:
        super().__init__(
            f"Too many requests: this API key may make {decision.limit} requests at once, "
            f"refilled at {decision.per_second:g} per second. Retry after "
            f"{decision.retry_after_seconds} s.",
        )
        self.decision = decision

    @property
    def retry_after_seconds(self) -> int:
        return self.decision.retry_after_seconds


@dataclass(frozen=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    per_second: float
    tokens: float  # left after this request

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.tokens))

    @property
    def reset_seconds(self) -> int:
        """Seconds until the bucket is full again."""
        return max(0, math.ceil((self.limit - self.tokens) / self.per_second))

    @property
    def retry_after_seconds(self) -> int:
        """Seconds until one token is back (at least 1, as `Retry-After` is whole seconds)."""
        return max(1, math.ceil((1 - self.tokens) / self.per_second))

    def headers(self) -> dict[str, str]:
        headers = {
            LIMIT_HEADER: str(self.limit),
            REMAINING_HEADER: str(self.remaining),
            RESET_HEADER: str(self.reset_seconds),
        }
        if not self.allowed:
            headers[RETRY_AFTER_HEADER] = str(self.retry_after_seconds)
        return headers


def rule_for(config: GatewayConfig, merchant_id: str, api_key_id: str) -> RateLimitRule:
    overrides = config.rate_limit_overrides
    found = overrides.get(api_key_id) or overrides.get(merchant_id)
    if found is not None:
        return found
    return RateLimitRule(per_second=config.rate_limit_per_second, burst=config.rate_limit_burst)


async def take(
    conn: AsyncConnection, api_key_id: str, merchant_id: str, rule: RateLimitRule
) -> RateLimitDecision | None:
    """Take one token from the API key's bucket; None when the key is revoked (or gone),
    and then nothing was taken. Run it on an autocommit connection: it is atomic alone."""
    params = {
        "bucket": api_key_id,
        "merchant_id": merchant_id,
        "burst": rule.burst,
        "rate": rule.per_second,
    }
    row = (await conn.execute(_TAKE, params)).first()
    if row is None:
        return None
    return RateLimitDecision(
        allowed=bool(row.allowed),
        limit=rule.burst,
        per_second=rule.per_second,
        tokens=row.tokens,  # double precision: a request count, never money
    )
