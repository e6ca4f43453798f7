"""Queries over ops users and sessions (no rules here); writes only flush."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_dashboard.users.models import OpsSession, OpsUser


async def by_email(session: AsyncSession, email: str) -> OpsUser | None:
    return await session.scalar(select(OpsUser).where(OpsUser.email == email))


async def emails_of(session: AsyncSession, user_ids: list[str]) -> dict[str, str]:
    """The email of each of these ops users that exists, by user id."""
    if not user_ids:
        return {}
    found = await session.execute(select(OpsUser.id, OpsUser.email).where(OpsUser.id.in_(user_ids)))
    return {user_id: email for user_id, email in found.all()}


async def live_session(
    session: AsyncSession, session_id: str, user_id: str, now: datetime
) -> tuple[OpsSession, OpsUser] | None:
    """The session and its user, unless revoked, expired or the user is disabled."""
    row = (
        await session.execute(
            select(OpsSession, OpsUser)
            .join(OpsUser, OpsUser.id == OpsSession.user_id)
            .where(
                OpsSession.id == session_id,
                OpsSession.user_id == user_id,
                OpsSession.revoked_at.is_(None),
                OpsSession.expires_at > now,
                OpsUser.disabled_at.is_(None),
            )
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def revoke(session: AsyncSession, session_id: str, now: datetime) -> None:
    await session.execute(
        update(OpsSession)
        .where(OpsSession.id == session_id, OpsSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
