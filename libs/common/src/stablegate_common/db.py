"""Async SQLAlchemy engine and unit of work, one PostgreSQL schema per service.

The schema is chosen through `search_path`, so models carry no schema name and a test can
run a service in a schema of its own. The edge (request, consumer, job) owns the unit of
work through `Database.transaction()`; services only `flush()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import MetaData, Numeric, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from stablegate_common.config import DatabaseSettings

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class BaseUnits(TypeDecorator[int]):
    """An on-chain amount: NUMERIC(78,0) in PostgreSQL, `int` in Python, never float."""

    impl = Numeric(78, 0)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"base units must be int, got {type(value).__name__}")
        return Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


class Database:
    def __init__(self, settings: DatabaseSettings, *, application_name: str = "stablegate") -> None:
        self.schema = settings.schema_name
        self.engine: AsyncEngine = create_async_engine(
            settings.async_url(),
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout_seconds,
            connect_args={
                "server_settings": {
                    "search_path": self.schema,
                    "application_name": application_name,
                    "statement_timeout": str(settings.statement_timeout_ms),
                }
            },
        )
        event.listen(self.engine.sync_engine.pool, "checkout", _refuse_closed_connection)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._after_commit: list[tuple[Callable[[], None], str | None]] = []

    def after_commit(self, callback: Callable[[], None], *, only_if: str | None = None) -> None:
        """Run `callback` after each `transaction()` that commits; with `only_if`, only after
        one that `flag_commit`-ed that flag (the relay wakes for transactions that wrote to
        the outbox, not for every commit)."""
        self._after_commit.append((callback, only_if))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session
        for callback, flag in self._after_commit:
            if flag is None or session.info.get(flag):
                callback()

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection whose every statement commits on its own: no BEGIN, no COMMIT.
        For single statements that are atomic by themselves (an upsert, a guarded update),
        where a transaction would only add two round trips."""
        async with self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def flag_commit(session: AsyncSession, flag: str) -> None:
    """Note that this transaction wrote what `flag` names (outbox rows, webhook
    deliveries): `after_commit(…, only_if=flag)` callbacks run once it commits."""
    session.info[flag] = True


def _refuse_closed_connection(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Checkout's liveness check, without a round trip: a connection the server closed
    while it sat in the pool (a restart, a failover, an idle timeout) is already marked
    closed by the event loop, and `DisconnectionError` makes the pool replace it.

    SQLAlchemy's `pool_pre_ping` would ask the server instead, with BEGIN, a query and a
    ROLLBACK on asyncpg: three round trips per checkout, a fifth of an intent creation's.
    What neither catches without a query (a peer that vanished silently) fails the one
    statement that meets it, and the pool then discards every older connection.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")
