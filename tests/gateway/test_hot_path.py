"""What one `POST /v1/payment_intents` asks of PostgreSQL: every statement, BEGIN and
COMMIT is a round trip, and at the gateway's peak the round trips are most of its CPU
(bench/intent_creation.py, README "Performance"). The counts below are the hot path's
budget; a change that adds a round trip to every creation fails here, not in production.

A retry of the same request (replayed from the idempotency record) and an authenticated
GET are counted too: they sit on the same path.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event

from stablegate_gateway.context import GatewayContext
from tests.fixtures.gateway import ApiMerchant, intent_body

# Budgets, as measured when the hot path was last rewritten (see the module docstring).
CREATE_ROUND_TRIPS = 11
REPLAY_ROUND_TRIPS = 3
RETRIEVE_ROUND_TRIPS = 6


@contextmanager
def round_trips(ctx: GatewayContext) -> Iterator[Counter[str]]:
    """Count what reaches PostgreSQL through the context's engine while the block runs."""
    seen: Counter[str] = Counter()
    engine = ctx.db.engine.sync_engine

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        seen[sql.split(None, 1)[0].upper()] += 1

    def sent(conn: Any) -> bool:
        # On an autocommit connection SQLAlchemy's begin/commit/rollback send nothing.
        return bool(conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT")

    def begin(conn: Any) -> None:
        seen["BEGIN"] += sent(conn)

    def commit(conn: Any) -> None:
        seen["COMMIT"] += sent(conn)

    def rollback(conn: Any) -> None:
        seen["ROLLBACK"] += sent(conn)

    hooks = [
        ("before_cursor_execute", statement),
        ("begin", begin),
        ("commit", commit),
        ("rollback", rollback),
    ]
    for name, hook in hooks:
        event.listen(engine, name, hook)
    try:
        yield seen
    finally:
        for name, hook in hooks:
            event.remove(engine, name, hook)


async def _create(api: httpx.AsyncClient, merchant: ApiMerchant, key: str) -> httpx.Response:
    headers = {**merchant.headers, "Idempotency-Key": key}
    return await api.post("/v1/payment_intents", json=intent_body(), headers=headers)


async def test_a_creation_stays_within_its_round_trip_budget(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    warm = await _create(api, merchant, str(uuid.uuid4()))  # the first one fills caches
    assert warm.status_code == 200, warm.text

    with round_trips(gateway_ctx) as seen:
        created = await _create(api, merchant, str(uuid.uuid4()))
    assert created.status_code == 200, created.text
    print("creation:", dict(seen))
    assert sum(seen.values()) <= CREATE_ROUND_TRIPS, dict(seen)
    # Reads: the merchant's terms and the webhook endpoints that want the event.
    assert seen["SELECT"] <= 2, dict(seen)


async def test_a_replay_and_a_read_stay_within_theirs(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    key = str(uuid.uuid4())
    first = await _create(api, merchant, key)
    assert first.status_code == 200, first.text

    with round_trips(gateway_ctx) as replayed:
        again = await _create(api, merchant, key)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    print("replay:", dict(replayed))
    assert sum(replayed.values()) <= REPLAY_ROUND_TRIPS, dict(replayed)

    with round_trips(gateway_ctx) as read:
        got = await api.get(f"/v1/payment_intents/{first.json()['id']}", headers=merchant.headers)
    assert got.status_code == 200, got.text
    print("retrieve:", dict(read))
    assert sum(read.values()) <= RETRIEVE_ROUND_TRIPS, dict(read)
