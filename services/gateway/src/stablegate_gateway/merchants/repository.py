"""Reads and writes of merchants and their API keys.

The key lookups select columns (no ORM entities), so they run on a plain connection as
well as in a session: authentication uses an autocommit connection (`Database.autocommit`).
"""

from __future__ import annotations

from sqlalchemy import Row, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from stablegate_gateway.merchants.models import ApiKey, Merchant


async def add_merchant(session: AsyncSession, merchant: Merchant, key: ApiKey) -> None:
    session.add(merchant)
    await session.flush()
    session.add(key)
    await session.flush()


async def active_key_by_hash(
    conn: AsyncConnection | AsyncSession, key_hash: str
) -> Row[str, str, str] | None:
    """(id, merchant_id, mode) of the unrevoked key with this hash."""
    result = await conn.execute(
        select(ApiKey.id, ApiKey.merchant_id, ApiKey.mode).where(
            ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)
        )
    )
    return result.first()


async def is_active(conn: AsyncConnection | AsyncSession, key_id: str, merchant_id: str) -> bool:
    """Whether this merchant's key exists and is not revoked."""
    active = exists().where(
        ApiKey.id == key_id, ApiKey.merchant_id == merchant_id, ApiKey.revoked_at.is_(None)
    )
    return bool(await conn.scalar(select(active)))
