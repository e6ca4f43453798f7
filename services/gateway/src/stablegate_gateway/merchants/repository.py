"""Reads and writes of merchants and their API keys."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_gateway.merchants.models import ApiKey, Merchant


async def add_merchant(session: AsyncSession, merchant: Merchant, key: ApiKey) -> None:
    session.add(merchant)
    await session.flush()
    session.add(key)
    await session.flush()


async def active_key_by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    return await session.scalar(
        select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )


async def active_key(session: AsyncSession, key_id: str, merchant_id: str) -> ApiKey | None:
    return await session.scalar(
        select(ApiKey).where(
            ApiKey.id == key_id, ApiKey.merchant_id == merchant_id, ApiKey.revoked_at.is_(None)
        )
    )
