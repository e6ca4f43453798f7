"""Reconciler fixtures: a database migrated to the reconciler's newest revision in the
test's own schema."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from stablegate_common.config import DatabaseSettings
from stablegate_common.db import Database
from stablegate_common.migrations import upgrade
from stablegate_reconciler.cli import MIGRATIONS


@pytest.fixture
async def ledger_db(db_settings: DatabaseSettings) -> AsyncIterator[Database]:
    await asyncio.to_thread(upgrade, MIGRATIONS, db_settings)
    db = Database(db_settings)
    try:
        yield db
    finally:
        await db.dispose()
