"""Settings of the Tron watcher: the shared concerns plus `WATCHER_*`
(stablegate_common.watcher.config) with what a java-tron node adds. The network name and
default schema are fixed here.

- `WATCHER_RPC_URL`: the full node's HTTP API, e.g. `http://127.0.0.1:8090`, or
  `WATCHER_RPC_URLS`: several full nodes (a provider pool, as for EVM watchers);
- `WATCHER_SOLIDITY_URL` / `WATCHER_SOLIDITY_URLS`: where `/walletsolidity/*` is served
  (java-tron: port 8091): none (each full node URL serves it, as TronGrid does), one for
  every full node, or one per full node in the same order;
- `WATCHER_API_KEY`: TronGrid's `TRON-PRO-API-KEY`, when the node is TronGrid;
- `WATCHER_BLOCKS_PER_CALL`: blocks per `getblockbylimitnext` call (java-tron allows 100).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import NoDecode

from stablegate_common.chains.endpoints import RpcEndpoint, parse_endpoints
from stablegate_common.config import ConfigurationError
from stablegate_common.watcher.config import WatcherServiceSettings, WatcherSettings

SERVICE = "chain-watcher-tron"
NETWORK = "tron"
DEFAULT_SCHEMA = "watcher_tron"


class TronWatcherConfig(WatcherSettings):
    solidity_url: str = Field(
        "", description="URL serving /walletsolidity/* (empty: the full node URL)"
    )
    solidity_urls: Annotated[list[RpcEndpoint], NoDecode] = Field(default_factory=list)
    api_key: SecretStr = Field(SecretStr(""), description="TronGrid API key, if any")
    blocks_per_call: int = Field(50, ge=1, le=100)
    # Each block with a contract call costs one receipt request, so windows are narrower
    # than on EVM chains, where one eth_getLogs covers the whole window.
    window_blocks: int = Field(100, ge=1, description="first scan window, in blocks")
    max_window_blocks: int = Field(1000, ge=1)

    @field_validator("solidity_urls", mode="before")
    @classmethod
    def _parse_solidity_urls(cls, value: Any) -> list[RpcEndpoint]:
        try:
            return parse_endpoints(value)
        except (ValueError, ValidationError) as exc:
            raise ValueError(f"WATCHER_SOLIDITY_URLS: {exc}") from exc

    def solidity_endpoints(self, network: str) -> list[RpcEndpoint]:
        """Solidity APIs paired with `endpoints(network)`: none, one, or one each."""
        if self.solidity_url and self.solidity_urls:
            raise ConfigurationError("set WATCHER_SOLIDITY_URL or WATCHER_SOLIDITY_URLS, not both")
        try:
            solidity = self.solidity_urls or parse_endpoints(self.solidity_url)
        except (ValueError, ValidationError) as exc:
            raise ConfigurationError(f"WATCHER_SOLIDITY_URL: {exc}") from exc
        full = len(self.endpoints(network))
        if len(solidity) not in (0, 1, full):
            raise ConfigurationError(
                f"WATCHER_SOLIDITY_URLS has {len(solidity)} URLs for {full} full nodes in "
                "WATCHER_RPC_URLS: give none, one, or one per full node"
            )
        return solidity

    def _missing_url_message(self, network: str) -> str:
        return (
            f"WATCHER_RPC_URL is required: the java-tron HTTP API URL of the {network} "
            "full node (e.g. http://127.0.0.1:8090), or WATCHER_RPC_URLS for several"
        )


class TronWatcherSettings(WatcherServiceSettings):
    watcher: TronWatcherConfig = Field(default_factory=TronWatcherConfig)
