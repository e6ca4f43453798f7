"""Statements over `idempotency_keys` (no decisions here: see `idempotency.service`).

Each is one Core statement, atomic by itself, so each runs in a session's transaction or
on an autocommit connection (`Database.autocommit`) alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Row, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from stablegate_gateway.idempotency.models import COMPLETED, IN_PROGRESS, IdempotencyKey

Executor = AsyncConnection | AsyncSession


async def claim(
    session: Executor,
    merchant_id: str,
    key: str,
    fingerprint: str,
    lock_token: str,
    lease: timedelta,
) -> bool:
    """Insert the claim unless the key exists; True when this call inserted it."""
    inserted = await session.scalar(
        insert(IdempotencyKey)
        .values(
            merchant_id=merchant_id,
            key=key,
            fingerprint=fingerprint,
            status=IN_PROGRESS,
            lock_token=lock_token,
            locked_until=func.now() + lease,
        )
        .on_conflict_do_nothing(index_elements=["merchant_id", "key"])
        .returning(IdempotencyKey.key)
    )
    return inserted is not None


async def get(
    session: Executor, merchant_id: str, key: str
) -> Row[str, str, int | None, str | None, bytes | None] | None:
    """(fingerprint, status, response_status, response_content_type, response_body)."""
    result = await session.execute(
        select(
            IdempotencyKey.fingerprint,
            IdempotencyKey.status,
            IdempotencyKey.response_status,
            IdempotencyKey.response_content_type,
            IdempotencyKey.response_body,
        ).where(IdempotencyKey.merchant_id == merchant_id, IdempotencyKey.key == key)
    )
    return result.first()


async def take_over(
    session: Executor,
    merchant_id: str,
    key: str,
    fingerprint: str,
    lock_token: str,
    lease: timedelta,
) -> bool:
    """Retake a claim whose holder's lease ran out (it crashed before finishing)."""
    taken = await session.scalar(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.merchant_id == merchant_id,
            IdempotencyKey.key == key,
            IdempotencyKey.fingerprint == fingerprint,
            IdempotencyKey.status == IN_PROGRESS,
            IdempotencyKey.locked_until < func.now(),
        )
        .values(lock_token=lock_token, locked_until=func.now() + lease)
        .returning(IdempotencyKey.key)
    )
    return taken is not None


async def complete(
    session: Executor,
    merchant_id: str,
    key: str,
    lock_token: str,
    *,
    status: int,
    content_type: str | None,
    body: bytes,
) -> bool:
    """Store the response, if this holder still owns the claim (False otherwise)."""
    stored = await session.scalar(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.merchant_id == merchant_id,
            IdempotencyKey.key == key,
            IdempotencyKey.lock_token == lock_token,
            IdempotencyKey.status == IN_PROGRESS,
        )
        .values(
            status=COMPLETED,
            response_status=status,
            response_content_type=content_type,
            response_body=body,
            completed_at=func.now(),
            lock_token=None,
            locked_until=None,
        )
        .returning(IdempotencyKey.key)
    )
    return stored is not None


async def release(session: Executor, merchant_id: str, key: str, lock_token: str) -> None:
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.merchant_id == merchant_id,
            IdempotencyKey.key == key,
            IdempotencyKey.lock_token == lock_token,
            IdempotencyKey.status == IN_PROGRESS,
        )
    )


async def purge_expired(session: AsyncSession, older_than: datetime) -> int:
    """Delete keys created before `older_than`, except a claim still being worked on."""
    result = await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.created_at < older_than,
            or_(
                IdempotencyKey.status == COMPLETED,
                IdempotencyKey.locked_until.is_(None),
                IdempotencyKey.locked_until < func.now(),
            ),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
