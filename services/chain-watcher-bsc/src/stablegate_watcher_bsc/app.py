"""Assembly of the BNB Smart Chain watcher: the EVM JSON-RPC client in proof-of-authority
mode under the shared watcher service (database, bus, outbox relay, watch-set consumer,
scanner, health).

BSC shares addresses with Ethereum (both derive on coin type 60), so this watcher watches
the same `evm` pool addresses as the Ethereum watcher and reports every transfer of BSC's
registered tokens to them with `network = "bsc"`; the gateway decides whether that pays a
BSC intent or is a wrong-network payment for an Ethereum one.
"""

from __future__ import annotations

from pathlib import Path

from stablegate_common.chains import ChainClient
from stablegate_common.chains.provider_pools import evm_pool
from stablegate_common.watcher.config import WatcherSettings
from stablegate_common.watcher.service import WatcherService, WatcherSpec, build_service
from stablegate_watcher_bsc.settings import (
    DEFAULT_SCHEMA,
    NETWORK,
    SERVICE,
    BscWatcherSettings,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def make_client(settings: WatcherSettings) -> ChainClient:
    # BSC blocks carry 97 bytes of extraData (vanity + validator seal); raw JSON-RPC never
    # decodes it, and `poa` tells any web3-based caller to add the POA middleware.
    return evm_pool(
        NETWORK,
        settings.endpoints(NETWORK),
        settings.pool_policy(),
        timeout_seconds=settings.rpc_timeout_seconds,
        poa=True,
    )


SPEC = WatcherSpec(
    service=SERVICE,
    network=NETWORK,
    default_schema=DEFAULT_SCHEMA,
    migrations=MIGRATIONS,
    settings_cls=BscWatcherSettings,
    client_factory=make_client,
)


def build(settings: BscWatcherSettings) -> WatcherService:
    return build_service(SPEC, settings)
