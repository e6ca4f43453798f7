"""Settings of the Tron watcher: the shared concerns plus `WATCHER_*`
(stablegate_common.watcher.config) with what a java-tron node adds. The network name and
default schema are fixed here.

- `WATCHER_RPC_URL`: the full node's HTTP API, e.g. `http://127.0.0.1:8090` (required);
- `WATCHER_SOLIDITY_URL`: where `/walletsolidity/*` is served (java-tron: port 8091);
  empty means the full node URL (TronGrid serves both there);
- `WATCHER_API_KEY`: TronGrid's `TRON-PRO-API-KEY`, when the node is TronGrid;
- `WATCHER_BLOCKS_PER_CALL`: blocks per `getblockbylimitnext` call (java-tron allows 100).
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from stablegate_common.config import ConfigurationError
from stablegate_common.watcher.config import WatcherServiceSettings, WatcherSettings

SERVICE = "chain-watcher-tron"
NETWORK = "tron"
DEFAULT_SCHEMA = "watcher_tron"


class TronWatcherConfig(WatcherSettings):
    solidity_url: str = Field(
        "", description="URL serving /walletsolidity/* (empty: the full node URL)"
    )
    api_key: SecretStr = Field(SecretStr(""), description="TronGrid API key, if any")
    blocks_per_call: int = Field(50, ge=1, le=100)
    # Each block with a contract call costs one receipt request, so windows are narrower
    # than on EVM chains, where one eth_getLogs covers the whole window.
    window_blocks: int = Field(100, ge=1, description="first scan window, in blocks")
    max_window_blocks: int = Field(1000, ge=1)

    def require_rpc_url(self, network: str) -> str:
        if not self.rpc_url:
            raise ConfigurationError(
                f"WATCHER_RPC_URL is required: the java-tron HTTP API URL of the {network} "
                "full node (e.g. http://127.0.0.1:8090)"
            )
        return self.rpc_url


class TronWatcherSettings(WatcherServiceSettings):
    watcher: TronWatcherConfig = Field(default_factory=TronWatcherConfig)
