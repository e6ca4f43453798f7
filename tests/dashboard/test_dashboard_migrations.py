"""The dashboard's migrations create exactly what its read models declare (no drift)."""

from __future__ import annotations

import asyncio

from stablegate_common.config import DatabaseSettings
from stablegate_common.db import Database
from stablegate_common.migrations import upgrade
from stablegate_dashboard.chain_heads.models import ChainHeadView
from stablegate_dashboard.cli import MIGRATIONS
from stablegate_dashboard.db import DashboardBase
from stablegate_dashboard.intents.models import IntentView
from stablegate_dashboard.transfers.models import TransferView
from tests.reconciler.support import drift


async def test_migrations_match_the_models(
    dashboard_db: Database, db_settings: DatabaseSettings
) -> None:
    loaded = {m.__tablename__ for m in (IntentView, TransferView, ChainHeadView)}
    assert set(DashboardBase.metadata.tables) == loaded == {"intents", "transfers", "chain_heads"}
    async with dashboard_db.engine.connect() as conn:
        differences = await conn.run_sync(drift(DashboardBase.metadata))
    assert differences == []

    await asyncio.to_thread(upgrade, MIGRATIONS, db_settings)  # again: a no-op
