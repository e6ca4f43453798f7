"""Live updates: the change feed sends each timeline entry once, in order, including one
whose transaction committed after a later position was read; the stream carries intent
changes as server-sent events to signed-in users only."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from stablegate_common.db import Database
from stablegate_dashboard.live.api import stream
from stablegate_dashboard.live.feed import LOOKBACK, ChangeFeed
from stablegate_dashboard.web.context import DashboardContext
from tests.dashboard.support import deliver
from tests.reconciler.factories import intent_event, next_snapshot, transfer

Reads = list[list[int]]


@pytest.mark.parametrize(
    ("cursor", "reads", "sent"),
    [
        # what was on the page (at or below the cursor) is not sent again
        (5, [[3, 4, 5, 6, 7]], [[6, 7]]),
        # each position once, however often it is read
        (0, [[1, 2], [1, 2, 3], [2, 3]], [[1, 2], [3], []]),
        # 4 committed after 5 was read: still sent, once
        (0, [[1, 2, 3, 5], [1, 2, 3, 4, 5, 6]], [[1, 2, 3, 5], [4, 6]]),
        # a late commit below the starting cursor, seen after the first read
        (10, [[9, 10], [8, 9, 10, 11]], [[], [8, 11]]),
    ],
)
def test_the_feed_sends_each_position_once(cursor: int, reads: Reads, sent: Reads) -> None:
    feed = ChangeFeed(cursor)
    out = [feed.fresh((p, p) for p in read) for read in reads]
    assert out == sent


def test_the_feed_reads_a_window_below_its_cursor_and_forgets_older_positions() -> None:
    feed = ChangeFeed(0)
    assert feed.read_from() == 0
    feed.fresh((p, p) for p in range(1, 1001))
    assert feed.cursor == 1000
    assert feed.read_from() == 1000 - LOOKBACK
    assert feed.fresh([(1000 - LOOKBACK + 1, "x")]) == []  # remembered
    assert len(feed._seen) <= LOOKBACK


class _Connected:
    """The one thing `stream` asks of the request."""

    async def is_disconnected(self) -> bool:
        return False


async def _next_change(messages: object) -> dict[str, object]:
    while True:
        chunk = await asyncio.wait_for(messages.__anext__(), timeout=10)  # type: ignore[attr-defined]
        if chunk.startswith("id: "):
            lines = dict(line.split(": ", 1) for line in chunk.strip().splitlines())
            assert lines["event"] == "intent"
            body: dict[str, object] = json.loads(lines["data"])
            assert int(lines["id"]) == body["position"]
            return body


async def test_the_stream_carries_new_intents_and_status_changes(
    dashboard_db: Database, dashboard_ctx: DashboardContext
) -> None:
    before = intent_event(sequence=1, created=True)
    await deliver(dashboard_db, before)
    messages = stream(dashboard_ctx, _Connected(), cursor=1)  # type: ignore[arg-type]
    assert await messages.__anext__() == "retry: 2000\n\n"

    created = intent_event(sequence=1, created=True, reference='<b>"order"</b>')
    await deliver(dashboard_db, created)
    first = await _next_change(messages)
    await deliver(dashboard_db, next_snapshot(created, sequence=2, transfers=[transfer()]))
    second = await _next_change(messages)
    await messages.aclose()

    assert first["event_type"] == "intent.created"
    intent = first["intent"]
    assert isinstance(intent, dict)
    assert (intent["id"], intent["status"], intent["amount"]) == (
        created.data["intent_id"],
        "awaiting_payment",
        "25.00",
    )
    assert intent["reference"] == '<b>"order"</b>'  # data, set with textContent by the page
    assert second["event_type"] == "intent.updated"
    assert second["intent"]["status"] == "paid"  # type: ignore[index]
    assert second["position"] > first["position"]  # type: ignore[operator]


async def test_the_stream_needs_a_session(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/live/intents")
    assert response.status_code == 401


async def test_the_stream_ends_when_the_service_stops(
    dashboard_ctx: DashboardContext,
) -> None:
    messages = stream(dashboard_ctx, _Connected(), cursor=0)  # type: ignore[arg-type]
    await messages.__anext__()
    dashboard_ctx.health.shutting_down = True
    rest = [m async for m in messages]
    assert all(not m.startswith("id: ") for m in rest)
