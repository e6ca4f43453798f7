"""The scanner lease: a PostgreSQL session advisory lock held on a connection of its own,
so that of N watcher replicas exactly one scans a network while the others stand by.

The lock lives as long as its connection. The holder checks the connection before each
tick and steps down when it is gone, because the database then released the lock and
another replica may already be scanning. The cursor's compare-and-set (repository
`move_cursor`) protects the rows even if two scanners overlap for a moment.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


class ScannerLease:
    def __init__(
        self, engine: AsyncEngine, key: str, *, check_timeout_seconds: float = 5.0
    ) -> None:
        self.engine = engine
        self.key = key
        self.check_timeout_seconds = check_timeout_seconds
        self._conn: AsyncConnection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    async def acquire(self) -> bool:
        """Take the lock if it is free; never waits for it."""
        conn = await self.engine.connect()
        try:
            locked = await conn.scalar(
                text("SELECT pg_try_advisory_lock(hashtext(:key))"), {"key": self.key}
            )
            await conn.commit()
        except BaseException:
            await conn.close()
            raise
        if not locked:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def alive(self) -> bool:
        """True while the lock's connection still answers (and so still holds the lock)."""
        conn = self._conn
        if conn is None:
            return False
        try:
            async with asyncio.timeout(self.check_timeout_seconds):
                await conn.execute(text("SELECT 1"))
                await conn.commit()
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("scanner lock connection lost", extra={"error": repr(exc)})
            return False
        return True

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": self.key})
            await conn.commit()
            await conn.close()
        except (SQLAlchemyError, OSError) as exc:
            # A pooled connection must never go back holding the lock: drop it instead.
            log.warning("scanner lock release failed", extra={"error": repr(exc)})
            await conn.invalidate()
            await conn.close()
