"""The webhook delivery worker: a durable queue in PostgreSQL (`webhook_deliveries`).

A delivery row is written in the same transaction as the event it carries, so nothing is
sent for a change that rolled back and nothing is lost when a process dies. The worker
claims due rows in a short transaction (`FOR UPDATE SKIP LOCKED`, then a lease in
`locked_until`), posts to the merchant with no transaction or row lock held, and records
the outcome in a second short transaction. Any number of replicas can run it: SKIP
LOCKED splits the due rows between them, and a row whose worker died mid-post is taken
again once its lease runs out (at least once; merchants dedupe on the event id).

Each delivery is retried on its own schedule, so one failing endpoint never holds back
another's events: exponential backoff (`retry_delay`) with ± jitter, which with the
defaults puts the 13th and last attempt about 72 hours after the first (the schedule is
in docs/merchant-guide.md). When a delivery's last attempt fails and nothing reached the
endpoint since that delivery's first attempt, the endpoint is disabled and a
`webhook_endpoint.disabled` event says so (`webhooks.service.give_up`), in the same
transaction as the outcome.

Every request is signed with the endpoint's secret and, while a rolled secret overlaps
it, with the previous one too (two `v1=` entries).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from stablegate_common.db import Database
from stablegate_gateway.api.serialization import iso_timestamp
from stablegate_gateway.events.models import MerchantEvent
from stablegate_gateway.settings import GatewayConfig
from stablegate_gateway.webhooks.models import WebhookDelivery, WebhookEndpoint
from stablegate_gateway.webhooks.service import give_up, signing_secrets
from stablegate_gateway.webhooks.signing import SIGNATURE_HEADER, signature_header
from stablegate_gateway.webhooks.urls import UrlRefused, check_webhook_url

log = logging.getLogger(__name__)

USER_AGENT = "Stablegate-Webhooks/1.0"
# Enough of a failing response to tell the merchant what went wrong, and no more.
_RESPONSE_EXCERPT_BYTES = 512
_LEASE_MARGIN_SECONDS = 30.0
_BACKLOG_EVERY_SECONDS = 5.0
_RETRYABLE = (SQLAlchemyError, OSError, TimeoutError)

DELIVERIES = Counter(
    "stablegate_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (succeeded, retrying, failed)",
    ["outcome"],
)
REQUEST_SECONDS = Histogram(
    "stablegate_webhook_request_seconds",
    "Time from sending a webhook to the merchant's response (or the timeout)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DELIVERY_LAG = Histogram(
    "stablegate_webhook_delivery_lag_seconds",
    "Time from an event's creation to its successful delivery",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 300, 3600, 86_400),
)
DUE_BACKLOG = Gauge("stablegate_webhook_due_backlog", "Webhook deliveries due now and not yet sent")


def nominal_delay(attempts: int, *, base: float, factor: float, cap: float) -> float:
    """Seconds to wait after the `attempts`-th failure, before jitter: base·factorⁿ⁻¹,
    capped. With the defaults (60 s, factor 3, 11 h): 1 min, 3 min, 9 min, 27 min, 81 min,
    4 h 3 min, then 11 h six times, so the 13th attempt comes ≈72 h after the first."""
    exponent = max(attempts - 1, 0)
    # Stop multiplying once past the cap: factor**exponent overflows for large exponents.
    delay = base
    for _ in range(exponent):
        delay *= factor
        if delay >= cap:
            return cap
    return min(cap, delay)


def retry_delay(
    attempts: int,
    *,
    base: float,
    factor: float,
    cap: float,
    jitter: float,
    rand: float | None = None,
) -> float:
    """The nominal delay moved by up to ±`jitter` of itself, at random (`rand` in [0, 1)).

    The jitter spreads the retries of a burst of failures (an endpoint that was down for
    everyone) instead of bringing them back all at once, while keeping the schedule's
    shape, so the last attempt still lands about three days after the first.
    """
    nominal = nominal_delay(attempts, base=base, factor=factor, cap=cap)
    fraction = random.random() if rand is None else rand
    return nominal * (1 + jitter * (2 * fraction - 1))


def retry_schedule(config: GatewayConfig) -> list[float]:
    """Nominal seconds from the first attempt to each later one (for the docs and tests)."""
    elapsed, schedule = 0.0, []
    for attempts in range(1, config.webhook_max_attempts):
        elapsed += nominal_delay(
            attempts,
            base=config.webhook_backoff_base_seconds,
            factor=config.webhook_backoff_factor,
            cap=config.webhook_backoff_cap_seconds,
        )
        schedule.append(elapsed)
    return schedule


@dataclass(frozen=True)
class ClaimedDelivery:
    id: str
    attempts: int  # before this attempt
    endpoint_id: str
    url: str
    secrets: tuple[str, ...]  # every secret that signs: the current one, a rolled one
    event_id: str
    event_created_at: datetime
    first_attempt_at: datetime  # the delivery's creation: due at once
    payload: dict[str, Any]


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    status_code: int | None
    error: str | None
    seconds: float


def event_payload(event: MerchantEvent) -> dict[str, Any]:
    """The JSON object a webhook carries (what `GET /v1/events/{id}` returns too)."""
    return {
        "id": event.id,
        "object": "event",
        "type": event.type,
        "created_at": iso_timestamp(event.created_at),
        "data": event.data,
        "sequence": event.sequence,
    }


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookDeliveryWorker:
    def __init__(
        self,
        db: Database,
        config: GatewayConfig,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.lease = timedelta(seconds=config.webhook_timeout_seconds + _LEASE_MARGIN_SECONDS)
        self._client = client or httpx.AsyncClient(
            follow_redirects=False,  # a 3xx is a failure: never chase a redirect elsewhere
            limits=httpx.Limits(max_connections=config.webhook_workers),
            headers={"User-Agent": USER_AGENT},
        )
        self._owns_client = client is None
        self._wake = asyncio.Event()

    def kick(self) -> None:
        """Look for due deliveries now (wire with
        `db.after_commit(worker.kick, only_if=DELIVERIES_QUEUED)`)."""
        self._wake.set()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- the loop ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, at most `webhook_workers` posts at a time; finish
        the posts in flight before returning."""
        in_flight: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        next_backlog = loop.time()
        failures = 0
        try:
            while not stop.is_set():
                self._wake.clear()
                free = self.config.webhook_workers - len(in_flight)
                claimed: list[ClaimedDelivery] = []
                try:
                    if free > 0:
                        claimed = await self.claim(free)
                    if loop.time() >= next_backlog:
                        await self.report_backlog()
                        next_backlog = loop.time() + _BACKLOG_EVERY_SECONDS
                except _RETRYABLE as exc:
                    failures += 1
                    log.warning("webhook claim failed, retrying", extra={"error": repr(exc)})
                    await _wait_any(stop, None, min(30.0, 0.25 * 2**failures))
                    continue
                failures = 0
                for delivery in claimed:
                    task = asyncio.create_task(self._deliver_and_record(delivery))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                if free > 0 and len(claimed) == free:
                    continue  # there may be more due rows: claim again when a slot frees
                if free <= 0:
                    await asyncio.wait({*in_flight}, return_when=asyncio.FIRST_COMPLETED)
                    continue
                await _wait_any(stop, self._wake, self.config.webhook_poll_seconds)
        finally:
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)

    async def deliver_due(self) -> int:
        """One pass: claim what is due (up to `webhook_workers`), deliver it, record the
        outcomes; return how many were attempted (tests and the CLI use this)."""
        claimed = await self.claim(self.config.webhook_workers)
        await asyncio.gather(*(self._deliver_and_record(d) for d in claimed))
        return len(claimed)

    async def _deliver_and_record(self, delivery: ClaimedDelivery) -> None:
        try:
            await self.record(delivery, await self.attempt(delivery))
        except Exception:
            # Whatever went wrong, the lease runs out and the row is taken again (one
            # duplicate post at worst); one delivery's failure must not stop the others.
            log.exception("webhook attempt not recorded", extra={"delivery": delivery.id})

    # -- the three steps -----------------------------------------------------------------

    async def claim(self, limit: int) -> list[ClaimedDelivery]:
        """Lease up to `limit` due deliveries to this worker (short transaction)."""
        now = func.now()
        async with self.db.sessions() as session, session.begin():
            due = (
                select(WebhookDelivery.id)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                    or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
                    WebhookEndpoint.deleted_at.is_(None),
                    WebhookEndpoint.status == "enabled",
                )
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True, of=WebhookDelivery)
            )
            ids = list((await session.scalars(due)).all())
            if not ids:
                return []
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids))
                .values(locked_until=now + self.lease)
            )
            rows = await session.execute(
                select(WebhookDelivery, WebhookEndpoint, MerchantEvent, now)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .join(MerchantEvent, MerchantEvent.id == WebhookDelivery.event_id)
                .where(WebhookDelivery.id.in_(ids))
                .order_by(WebhookDelivery.next_attempt_at)
            )
            return [
                ClaimedDelivery(
                    id=delivery.id,
                    attempts=delivery.attempts,
                    endpoint_id=endpoint.id,
                    url=endpoint.url,
                    secrets=tuple(
                        signing_secrets(
                            endpoint.secret,
                            endpoint.previous_secret,
                            endpoint.previous_secret_expires_at,
                            database_now,
                        )
                    ),
                    event_id=event.id,
                    event_created_at=event.created_at,
                    first_attempt_at=delivery.created_at,
                    payload=event_payload(event),
                )
                for delivery, endpoint, event, database_now in rows.all()
            ]

    async def attempt(self, delivery: ClaimedDelivery) -> AttemptResult:
        """POST the event, signed; no transaction is open while this runs."""
        body = encode_body(delivery.payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature_header(delivery.secrets, body),
            "Stablegate-Event-Id": delivery.event_id,
            "Stablegate-Delivery-Id": delivery.id,
            "Stablegate-Delivery-Attempt": str(delivery.attempts + 1),
        }
        started = time.perf_counter()
        status_code: int | None = None
        try:
            await check_webhook_url(
                delivery.url, allow_private=self.config.webhook_allow_private_urls
            )
            async with asyncio.timeout(self.config.webhook_timeout_seconds):
                status_code, excerpt = await self._post(delivery.url, body, headers)
        except UrlRefused as exc:
            return AttemptResult(False, None, exc.message, time.perf_counter() - started)
        except (httpx.HTTPError, OSError) as exc:
            return AttemptResult(False, None, _describe(exc), time.perf_counter() - started)
        except TimeoutError:
            error = f"no response within {self.config.webhook_timeout_seconds}s"
            return AttemptResult(False, None, error, time.perf_counter() - started)
        finally:
            REQUEST_SECONDS.observe(time.perf_counter() - started)
        elapsed = time.perf_counter() - started
        if 200 <= status_code < 300:
            return AttemptResult(True, status_code, None, elapsed)
        return AttemptResult(False, status_code, f"HTTP {status_code}: {excerpt}", elapsed)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        async with self._client.stream("POST", url, content=body, headers=headers) as response:
            excerpt = b""
            async for chunk in response.aiter_bytes():
                excerpt += chunk
                if len(excerpt) >= _RESPONSE_EXCERPT_BYTES:
                    break
            text = excerpt[:_RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace")
            return response.status_code, text

    async def record(self, delivery: ClaimedDelivery, result: AttemptResult) -> None:
        """Store the outcome; schedule the next attempt or give up after the last one."""
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "locked_until": None,
            "last_status_code": result.status_code,
            "last_error": result.error,
            "last_attempt_at": func.now(),
            "last_duration_ms": round(result.seconds * 1000),
        }
        if result.ok:
            outcome = "succeeded"
            values.update(status="succeeded", delivered_at=func.now())
        elif attempts >= self.config.webhook_max_attempts:
            outcome = "failed"
            values.update(status="failed")
        else:
            outcome = "retrying"
            values.update(next_attempt_at=func.now() + timedelta(seconds=self._delay(attempts)))
        disabled = False
        async with self.db.transaction() as session:
            # The attempts guard drops a late result when a slow worker lost its lease and
            # another already recorded this attempt.
            recorded = await session.scalar(
                update(WebhookDelivery)
                .where(
                    and_(
                        WebhookDelivery.id == delivery.id,
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.attempts == delivery.attempts,
                    )
                )
                .values(**values)
                .returning(WebhookDelivery.id)
            )
            if recorded is not None and outcome == "failed":
                disabled = await give_up(session, delivery.endpoint_id, delivery.first_attempt_at)
        if disabled:
            log.warning(
                "webhook endpoint disabled after its deliveries failed",
                extra={"endpoint": delivery.endpoint_id, "delivery": delivery.id},
            )
        DELIVERIES.labels(outcome).inc()
        if result.ok:
            DELIVERY_LAG.observe(
                max(0.0, (datetime.now(UTC) - delivery.event_created_at).total_seconds())
            )
        log.log(
            logging.INFO if result.ok else logging.WARNING,
            "webhook %s",
            outcome,
            extra={
                "delivery": delivery.id,
                "event": delivery.event_id,
                "endpoint": delivery.endpoint_id,
                "attempt": attempts,
                "status_code": result.status_code,
                "error": result.error,
                "seconds": round(result.seconds, 4),
            },
        )

    def _delay(self, attempts: int) -> float:
        config = self.config
        return retry_delay(
            attempts,
            base=config.webhook_backoff_base_seconds,
            factor=config.webhook_backoff_factor,
            cap=config.webhook_backoff_cap_seconds,
            jitter=config.webhook_backoff_jitter,
        )

    async def report_backlog(self) -> int:
        async with self.db.sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= func.now(),
                )
            )
        DUE_BACKLOG.set(count or 0)
        return count or 0


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500] if str(exc) else type(exc).__name__


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in (stop, wake) if e is not None]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waiters, return_exceptions=True)
