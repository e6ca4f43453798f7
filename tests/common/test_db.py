"""The engine every service uses: a connection the server closed while pooled is replaced
at checkout without a query, and `autocommit()` commits each statement on its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event, text

from stablegate_common.config import DatabaseSettings
from stablegate_common.db import Database

SCHEMA = f"test_db_{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    database = Database(DatabaseSettings(schema_name=SCHEMA, pool_size=1, max_overflow=0))
    async with database.autocommit() as conn:
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    try:
        yield database
    finally:
        async with database.autocommit() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        await database.dispose()


async def _backend_pid(database: Database) -> int:
    async with database.engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_closed_by_the_server_is_replaced_at_checkout(db: Database) -> None:
    first = await _backend_pid(db)  # the pool's only connection, now idle in the pool
    async with Database(DatabaseSettings(schema_name=SCHEMA)).engine.connect() as admin:
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        await admin.commit()
    await asyncio.sleep(0.2)  # the event loop hears of the closed socket

    statements: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    second = await _backend_pid(db)  # no error: the pool handed out a new connection
    assert second != first
    assert statements == ["SELECT pg_backend_pid()"]  # and asked nothing to find out


async def test_autocommit_statements_are_visible_at_once_without_a_transaction(
    db: Database,
) -> None:
    table = f"{SCHEMA}.autocommit_{uuid.uuid4().hex[:8]}"
    other = Database(DatabaseSettings(schema_name=SCHEMA))
    try:
        async with db.autocommit() as conn:
            await conn.execute(text(f"CREATE TABLE {table} (n int)"))
            await conn.execute(text(f"INSERT INTO {table} VALUES (1)"))
            # Still inside the block: another connection already sees the row.
            async with other.engine.connect() as reader:
                seen = (await reader.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
            assert seen == 1
    finally:
        await other.dispose()
