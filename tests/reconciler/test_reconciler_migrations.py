"""The reconciler's migrations create exactly what its models declare (no drift), and run
twice without harm (replicas starting together)."""

from __future__ import annotations

import asyncio

from stablegate_common.config import DatabaseSettings
from stablegate_common.db import Database
from stablegate_common.migrations import upgrade
from stablegate_reconciler.cli import MIGRATIONS
from stablegate_reconciler.db import ReconcilerBase
from stablegate_reconciler.ledger import models as ledger_models
from stablegate_reconciler.reconciliation import models as reconciliation_models
from tests.reconciler.support import drift

TABLES = {
    "accounts",
    "journal_entries",
    "postings",
    "bookings",
    "intent_positions",
    "balances",
    "observed_transfers",
    "reconciliation_runs",
    "discrepancies",
    "outgoing_bookings",
}


async def test_migrations_match_the_models(
    ledger_db: Database, db_settings: DatabaseSettings
) -> None:
    assert ledger_models.Account.__table__ is not None  # the models are loaded
    assert reconciliation_models.Discrepancy.__table__ is not None
    assert set(ReconcilerBase.metadata.tables) == TABLES
    async with ledger_db.engine.connect() as conn:
        differences = await conn.run_sync(drift(ReconcilerBase.metadata))
    assert differences == []

    await asyncio.to_thread(upgrade, MIGRATIONS, db_settings)  # again: a no-op
