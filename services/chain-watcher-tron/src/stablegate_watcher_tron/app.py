"""Assembly of the Tron watcher: a pool of java-tron HTTP clients (one per
full node in WATCHER_RPC_URLS) under the shared watcher
service (database, bus, outbox relay, watch-set consumer, scanner, health)."""

from __future__ import annotations

from pathlib import Path

from stablegate_common.chains import ChainClient
from stablegate_common.chains.provider_pools import tron_pool
from stablegate_common.watcher.config import WatcherSettings
from stablegate_common.watcher.service import WatcherService, WatcherSpec, build_service
from stablegate_watcher_tron.settings import (
    DEFAULT_SCHEMA,
    NETWORK,
    SERVICE,
    TronWatcherConfig,
    TronWatcherSettings,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def make_client(settings: WatcherSettings) -> ChainClient:
    # The service builds TronWatcherSettings; plain WatcherSettings (tests) get defaults.
    tron = settings if isinstance(settings, TronWatcherConfig) else None
    return tron_pool(
        NETWORK,
        settings.endpoints(NETWORK),
        tron.solidity_endpoints(NETWORK) if tron else [],
        settings.pool_policy(),
        api_key=tron.api_key if tron else None,
        blocks_per_call=tron.blocks_per_call if tron else 50,
        timeout_seconds=settings.rpc_timeout_seconds,
    )


SPEC = WatcherSpec(
    service=SERVICE,
    network=NETWORK,
    default_schema=DEFAULT_SCHEMA,
    migrations=MIGRATIONS,
    settings_cls=TronWatcherSettings,
    client_factory=make_client,
)


def build(settings: TronWatcherSettings) -> WatcherService:
    return build_service(SPEC, settings)
