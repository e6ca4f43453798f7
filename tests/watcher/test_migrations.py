"""The Ethereum watcher's migration creates exactly the tables the models describe."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from stablegate_common.bus import InboxMessage, OutboxMessage
from stablegate_common.db import Database
from stablegate_common.watcher.models import WATCHER_MODELS

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _differences(conn: Connection, metadata: MetaData) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": False}
    )
    return list(compare_metadata(context, metadata))


async def test_migration_matches_the_models(watcher_db: Database) -> None:
    metadata = MetaData()
    for model in (*WATCHER_MODELS, OutboxMessage, InboxMessage):
        model.__table__.to_metadata(metadata)  # type: ignore[attr-defined]
    async with watcher_db.engine.connect() as conn:
        diff = await conn.run_sync(_differences, metadata)
        tables = set(
            await conn.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = :s"),
                {"s": watcher_db.schema},
            )
        )
    assert diff == []
    assert tables == {
        "alembic_version",
        "outbox",
        "inbox",
        "scan_cursor",
        "block_hashes",
        "watched_addresses",
        "observed_transfers",
        "tracked_transactions",
    }
