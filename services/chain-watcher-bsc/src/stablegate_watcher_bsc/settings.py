"""Settings of the BNB Smart Chain watcher: the shared concerns plus `WATCHER_*`
(stablegate_common.watcher.config). The network name and default schema are fixed here;
the confirmation depth comes from the asset registry (15 on mainnet) unless
`WATCHER_CONFIRMATIONS` overrides it."""

from __future__ import annotations

from stablegate_common.watcher.config import WatcherServiceSettings

SERVICE = "chain-watcher-bsc"
NETWORK = "bsc"
DEFAULT_SCHEMA = "watcher_bsc"


class BscWatcherSettings(WatcherServiceSettings):
    pass
