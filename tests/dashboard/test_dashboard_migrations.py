"""The dashboard's migrations create exactly what its models declare (no drift)."""

from __future__ import annotations

import asyncio

from stablegate_common.config import DatabaseSettings
from stablegate_common.db import Database
from stablegate_common.migrations import upgrade
from stablegate_dashboard import app  # noqa: F401 - loads every model
from stablegate_dashboard.cli import MIGRATIONS
from stablegate_dashboard.db import DashboardBase
from tests.reconciler.support import drift

TABLES = {
    "intents",
    "intent_events",
    "transfer_claims",
    "transfers",
    "chain_heads",
    "deposit_addresses",
    "balances",
    "reconciliation_runs",
    "discrepancies",
    "ops_users",
    "ops_sessions",
}


async def test_migrations_match_the_models(
    dashboard_db: Database, db_settings: DatabaseSettings
) -> None:
    assert set(DashboardBase.metadata.tables) == TABLES
    async with dashboard_db.engine.connect() as conn:
        differences = await conn.run_sync(drift(DashboardBase.metadata))
    assert differences == []

    await asyncio.to_thread(upgrade, MIGRATIONS, db_settings)  # again: a no-op
