"""Dashboard fixtures: a database migrated to the dashboard's newest revision in the
test's own schema, and an HTTP client on the dashboard app over it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from stablegate_common.config import DatabaseSettings
from stablegate_common.db import Database
from stablegate_common.http.health import Health
from stablegate_common.migrations import upgrade
from stablegate_dashboard.app import build_app
from stablegate_dashboard.cli import MIGRATIONS


@pytest.fixture
async def dashboard_db(db_settings: DatabaseSettings) -> AsyncIterator[Database]:
    await asyncio.to_thread(upgrade, MIGRATIONS, db_settings)
    db = Database(db_settings)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def api(dashboard_db: Database) -> AsyncIterator[httpx.AsyncClient]:
    health = Health()
    health.add_check("database", dashboard_db.ping)
    app = build_app(dashboard_db, health)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as client:
        yield client
