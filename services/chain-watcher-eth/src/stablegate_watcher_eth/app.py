"""Assembly of the Ethereum watcher: a pool of EVM JSON-RPC clients (one per
provider in WATCHER_RPC_URLS) under the shared watcher
service (database, bus, outbox relay, watch-set consumer, scanner, health)."""

from __future__ import annotations

from pathlib import Path

from stablegate_common.chains import ChainClient
from stablegate_common.chains.provider_pools import evm_pool
from stablegate_common.watcher.config import WatcherSettings
from stablegate_common.watcher.service import WatcherService, WatcherSpec, build_service
from stablegate_watcher_eth.settings import (
    DEFAULT_SCHEMA,
    NETWORK,
    SERVICE,
    EthWatcherSettings,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def make_client(settings: WatcherSettings) -> ChainClient:
    return evm_pool(
        NETWORK,
        settings.endpoints(NETWORK),
        settings.pool_policy(),
        timeout_seconds=settings.rpc_timeout_seconds,
    )


SPEC = WatcherSpec(
    service=SERVICE,
    network=NETWORK,
    default_schema=DEFAULT_SCHEMA,
    migrations=MIGRATIONS,
    settings_cls=EthWatcherSettings,
    client_factory=make_client,
)


def build(settings: EthWatcherSettings) -> WatcherService:
    return build_service(SPEC, settings)
