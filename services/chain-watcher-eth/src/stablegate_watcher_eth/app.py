"""Assembly of the Ethereum watcher: the EVM JSON-RPC client under the shared watcher
service (database, bus, outbox relay, watch-set consumer, scanner, health)."""

from __future__ import annotations

from pathlib import Path

from stablegate_common.chains import ChainClient
from stablegate_common.chains.evm import EvmClient
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
    return EvmClient(
        settings.require_rpc_url(NETWORK), timeout_seconds=settings.rpc_timeout_seconds
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
