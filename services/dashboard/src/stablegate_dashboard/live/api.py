"""`GET /live/intents`: server-sent events, one per intent change, for the open pages.

Each stream polls the timeline read model (live/feed.py), so every replica serves every
change whichever replica's consumer wrote it. A stream ends after MAX_STREAM_SECONDS or
when the process is stopping; the browser reconnects by itself with `Last-Event-ID`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from stablegate_dashboard.intents import repository
from stablegate_dashboard.intents.models import IntentEventView, IntentView
from stablegate_dashboard.live.feed import ChangeFeed
from stablegate_dashboard.web.context import Ctx, DashboardContext
from stablegate_dashboard.web.session import User
from stablegate_dashboard.web.templating import amount, status_label, status_tone

MAX_STREAM_SECONDS = 300.0
KEEPALIVE_SECONDS = 15.0

router = APIRouter(include_in_schema=False)


def change_message(event: IntentEventView, intent: IntentView) -> dict[str, Any]:
    """What a page needs to add or update one intent row (the intent's current state)."""
    return {
        "position": event.position,
        "event_type": event.event_type,
        "event_status": event.status,
        "occurred_at": event.occurred_at.isoformat(),
        "intent": {
            "id": intent.id,
            "sequence": intent.sequence,
            "status": intent.status,
            "status_label": status_label(intent.status),
            "tone": status_tone(intent.status),
            "exception": intent.exception,
            "network": intent.network,
            "asset": intent.asset,
            "amount": amount(intent.amount_base_units, intent.decimals),
            "received": amount(intent.amount_received_base_units, intent.decimals),
            "reference": intent.reference,
            "deposit_address": intent.deposit_address,
            "created_at": intent.created_at.isoformat(),
            "url": f"/intents/{intent.id}",
        },
    }


def sse(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def stream(ctx: DashboardContext, request: Request, cursor: int) -> AsyncGenerator[str, None]:
    feed = ChangeFeed(cursor)
    poll = ctx.settings.dashboard.live_poll_seconds
    deadline = time.monotonic() + MAX_STREAM_SECONDS
    quiet_since = time.monotonic()
    yield "retry: 2000\n\n"
    while not ctx.health.shutting_down and time.monotonic() < deadline:
        if await request.is_disconnected():
            return
        async with ctx.db.sessions() as session:
            rows = await repository.changes_since(session, feed.read_from())
        fresh = feed.fresh((event.position, (event, intent)) for event, intent in rows)
        for event, intent in fresh:
            yield sse("intent", change_message(event, intent), event.position)
        if fresh:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield ": keepalive\n\n"
        await asyncio.sleep(poll)


@router.get("/live/intents")
async def live_intents(
    ctx: Ctx, request: Request, user: User, after: int | None = None
) -> StreamingResponse:
    resume = request.headers.get("last-event-id", "")
    if resume.isdigit():
        cursor = int(resume)
    elif after is not None:
        cursor = after
    else:
        async with ctx.db.sessions() as session:
            cursor = await repository.latest_position(session)
    return StreamingResponse(
        stream(ctx, request, cursor),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
