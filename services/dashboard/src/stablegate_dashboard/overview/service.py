"""The overview's figures over the last 24 hours or 7 days, from the intent read model:
paid volume and count by network and asset, intents by status, the paid rate, the
median time from creation to paid, and the series the charts draw.

Volumes are summed in base units per (network, asset) — USDT has 18 decimals on BSC and
6 elsewhere — and only then turned into Decimal amounts, so nothing is ever rounded.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, get_args

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.money import from_base_units
from stablegate_common.events.contracts import IntentStatus
from stablegate_dashboard.intents.models import IntentView
from stablegate_dashboard.wallets.service import OPEN_STATUSES

# name: (window, chart bucket, bucket length)
PERIODS: dict[str, tuple[timedelta, str, timedelta]] = {
    "24h": (timedelta(hours=24), "hour", timedelta(hours=1)),
    "7d": (timedelta(days=7), "day", timedelta(days=1)),
}
STATUS_ORDER: tuple[str, ...] = get_args(IntentStatus)


@dataclass(frozen=True)
class Volume:
    network: str
    asset: str
    decimals: int
    count: int
    base_units: int


@dataclass
class Overview:
    period: str
    since: datetime
    volumes: list[Volume]
    by_status: dict[str, int]
    created: int
    paid: int
    open_intents: int
    paid_rate: Decimal | None
    median_seconds_to_paid: int | None
    totals_by_asset: dict[str, Decimal] = field(default_factory=dict)
    chart: dict[str, Any] = field(default_factory=dict)


async def overview(session: AsyncSession, period: str, *, now: datetime) -> Overview:
    window, unit, step = PERIODS[period]
    since = now - window
    volumes = await _volumes(session, since)
    by_status = await _by_status(session, since)
    created = sum(by_status.values())
    paid = by_status.get("paid", 0)
    totals = _totals_by_asset(volumes)
    series = await _series(session, since, unit)
    return Overview(
        period=period,
        since=since,
        volumes=volumes,
        by_status=by_status,
        created=created,
        paid=paid,
        open_intents=await _open_intents(session),
        paid_rate=(Decimal(paid * 100) / Decimal(created)) if created else None,
        median_seconds_to_paid=await _median_seconds_to_paid(session, since),
        totals_by_asset=totals,
        chart={
            "volume": _volume_chart(series, since, now, unit, step, sorted(totals)),
            "statuses": {
                "labels": [s.replace("_", " ") for s in STATUS_ORDER],
                "keys": list(STATUS_ORDER),
                "data": [by_status.get(s, 0) for s in STATUS_ORDER],
            },
        },
    )


async def _volumes(session: AsyncSession, since: datetime) -> list[Volume]:
    rows = await session.execute(
        select(
            IntentView.network,
            IntentView.asset,
            IntentView.decimals,
            func.count(),
            func.sum(IntentView.amount_confirmed_base_units),
        )
        .where(IntentView.paid_at >= since)
        .group_by(IntentView.network, IntentView.asset, IntentView.decimals)
        .order_by(IntentView.network, IntentView.asset)
    )
    return [
        Volume(network, asset, decimals, int(count), int(total))
        for network, asset, decimals, count, total in rows
    ]


def _totals_by_asset(volumes: list[Volume]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for v in volumes:
        totals[v.asset] += from_base_units(v.base_units, v.decimals)
    return dict(sorted(totals.items()))


async def _by_status(session: AsyncSession, since: datetime) -> dict[str, int]:
    rows = await session.execute(
        select(IntentView.status, func.count())
        .where(IntentView.created_at >= since)
        .group_by(IntentView.status)
    )
    return {status: int(count) for status, count in rows}


async def _open_intents(session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count()).select_from(IntentView).where(IntentView.status.in_(OPEN_STATUSES))
    )
    return int(count or 0)


async def _median_seconds_to_paid(session: AsyncSession, since: datetime) -> int | None:
    seconds = func.extract("epoch", IntentView.paid_at - IntentView.created_at)
    median = await session.scalar(
        select(func.percentile_cont(0.5).within_group(seconds)).where(IntentView.paid_at >= since)
    )
    return None if median is None else round(median)


async def _series(
    session: AsyncSession, since: datetime, unit: str
) -> dict[tuple[datetime, str], Decimal]:
    """Paid volume per (bucket start in UTC, asset)."""
    bucket = func.date_trunc(unit, func.timezone("UTC", IntentView.paid_at)).label("bucket")
    rows = await session.execute(
        select(
            bucket,
            IntentView.asset,
            IntentView.decimals,
            func.sum(IntentView.amount_confirmed_base_units),
        )
        .where(IntentView.paid_at >= since)
        .group_by(bucket, IntentView.asset, IntentView.decimals)
    )
    series: dict[tuple[datetime, str], Decimal] = defaultdict(Decimal)
    for start, asset, decimals, total in rows:
        series[(start.replace(tzinfo=UTC), asset)] += from_base_units(int(total), decimals)
    return series


def _bucket_starts(since: datetime, now: datetime, unit: str, step: timedelta) -> list[datetime]:
    start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        start = start.replace(hour=0)
    starts = []
    while start <= now:
        starts.append(start)
        start += step
    return starts


def _volume_chart(
    series: dict[tuple[datetime, str], Decimal],
    since: datetime,
    now: datetime,
    unit: str,
    step: timedelta,
    assets: list[str],
) -> dict[str, Any]:
    """Labels and one dataset per asset; amounts as decimal strings (the page's script
    turns them into chart coordinates, nothing else)."""
    starts = _bucket_starts(since, now, unit, step)
    label_format = "%H:00" if unit == "hour" else "%b %d"
    return {
        "labels": [s.strftime(label_format) for s in starts],
        "datasets": [
            {
                "label": asset,
                "data": [_plain(series.get((s, asset), Decimal(0))) for s in starts],
            }
            for asset in assets
        ],
    }


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
