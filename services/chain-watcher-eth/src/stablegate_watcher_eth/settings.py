"""Settings of the Ethereum watcher: the shared concerns plus `WATCHER_*`
(stablegate_common.watcher.config). The network name and default schema are fixed here."""

from __future__ import annotations

from stablegate_common.watcher.config import WatcherServiceSettings

SERVICE = "chain-watcher-eth"
NETWORK = "ethereum"
DEFAULT_SCHEMA = "watcher_ethereum"


class EthWatcherSettings(WatcherServiceSettings):
    pass
