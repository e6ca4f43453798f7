"""Helpers of the BSC watcher tests: the BSC network of the devnet overlay, watcher schemas
migrated by the BSC (or Ethereum) watcher's own alembic history, and engines over them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from stablegate_common.chains import ChainClient
from stablegate_common.config import DatabaseSettings
from stablegate_common.core.assets import AssetRegistry, Network
from stablegate_common.db import Database
from stablegate_common.migrations import upgrade
from stablegate_common.watcher import EngineConfig, WatcherEngine
from stablegate_watcher_bsc.app import MIGRATIONS as BSC_MIGRATIONS
from stablegate_watcher_bsc.settings import SERVICE as BSC_SERVICE
from tests.conftest import DATABASE_URL, drop_schema, unique
from tests.fixtures.anvil import AnvilChain
from tests.fixtures.watcher import CONFIRMATIONS


def network_of(chain: AnvilChain, name: str) -> Network:
    return AssetRegistry.from_mapping(chain.assets_overlay).network(name)


def engine_config(**overrides: Any) -> EngineConfig:
    """What the shared `make_engine` fixture uses: fast polling, a short depth."""
    settings: dict[str, Any] = {
        "confirmations": CONFIRMATIONS,
        "reorg_window": 64,
        "poll_interval_seconds": 0.05,
        "clock_skew_seconds": 5,
        "max_error_backoff_seconds": 0.5,
        "standby_poll_seconds": 0.1,
    }
    settings.update(overrides)
    return EngineConfig(**settings)


@contextlib.asynccontextmanager
async def watcher_schema(migrations: Path = BSC_MIGRATIONS) -> AsyncIterator[Database]:
    """A schema of its own, migrated by `migrations`, dropped afterwards."""
    schema = unique("t")
    settings = DatabaseSettings(
        url=SecretStr(DATABASE_URL),
        DATABASE_SCHEMA=schema,  # the field's env alias
        pool_size=5,
    )
    try:
        await asyncio.to_thread(upgrade, migrations, settings)
        db = Database(settings)
        try:
            yield db
        finally:
            await db.dispose()
    finally:
        await drop_schema(schema)


def bsc_engine(
    db: Database,
    client: ChainClient,
    network: Network,
    *,
    start_block: int,
    **config: Any,
) -> WatcherEngine:
    return WatcherEngine(
        db,
        client,
        network,
        engine_config(start_block=start_block, **config),
        producer=BSC_SERVICE,
    )
