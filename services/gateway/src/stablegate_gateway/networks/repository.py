"""Network heads as the watchers last reported them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_gateway.networks.models import NetworkHead


async def heads(session: AsyncSession) -> dict[str, NetworkHead]:
    return {head.network: head for head in await session.scalars(select(NetworkHead))}


async def head(session: AsyncSession, network: str) -> NetworkHead | None:
    return await session.get(NetworkHead, network)


async def save_head_if_newer(
    session: AsyncSession,
    *,
    network: str,
    head_block: int,
    scanned_block: int,
    head_timestamp: datetime,
    observed_at: datetime,
) -> bool:
    """Upsert the head unless the stored one is newer; return whether it was applied.

    Newer means a later report of the same or further progress: a report observed earlier
    than the stored one, or one that would move the scan backwards, is an out-of-order
    delivery and is dropped.
    """
    row = {
        "network": network,
        "head_block": head_block,
        "scanned_block": scanned_block,
        "head_timestamp": head_timestamp,
        "observed_at": observed_at,
    }
    stmt = insert(NetworkHead).values(**row)
    excluded = stmt.excluded
    upsert = stmt.on_conflict_do_update(
        index_elements=[NetworkHead.network],
        set_={key: getattr(excluded, key) for key in row if key != "network"},
        where=(NetworkHead.observed_at < excluded.observed_at)
        & (
            tuple_(NetworkHead.head_block, NetworkHead.scanned_block)
            <= tuple_(excluded.head_block, excluded.scanned_block)
        ),
    ).returning(NetworkHead.network)
    return (await session.scalar(upsert)) is not None
