"""Configuration of a chain watcher: `WatcherSettings` (env `WATCHER_*`) as operators set
it, and `EngineConfig`, the resolved values the engine runs with.

The network name and default schema are fixed by each watcher service; everything that
tunes scanning (poll interval, window, reorg window, backfill) is read here once at start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from stablegate_common.chains.endpoints import RpcEndpoint, parse_endpoints
from stablegate_common.chains.pool import PoolPolicy
from stablegate_common.config import ConfigurationError, ServiceSettings
from stablegate_common.core.assets import Network

MIN_REORG_WINDOW = 64


class WatcherSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WATCHER_", extra="ignore")

    rpc_url: str = Field("", description="JSON-RPC URL of the chain node (one provider)")
    # Several providers: JSON `[{"url": …, "weight": 2, "name": "infura"}, "http://…"]` or
    # `http://a*2,http://b` (weight after `*`). Either this or WATCHER_RPC_URL.
    rpc_urls: Annotated[list[RpcEndpoint], NoDecode] = Field(default_factory=list)
    rpc_quorum: int = Field(1, ge=1, description="providers that must reach a head to scan it")
    rpc_max_lag_blocks: int = Field(
        3, ge=0, description="a provider further behind the highest head counts as unhealthy"
    )
    rpc_backoff_seconds: float = Field(1.0, gt=0, description="first rest of a failing provider")
    rpc_max_backoff_seconds: float = Field(60.0, gt=0)
    rpc_timeout_seconds: float = Field(10.0, gt=0)
    poll_interval_seconds: float = Field(1.0, gt=0)
    window_blocks: int = Field(500, ge=1, description="first log query window, in blocks")
    max_window_blocks: int = Field(2000, ge=1)
    start_block: int | None = Field(None, ge=0, description="first block when no cursor exists")
    start_blocks_back: int = Field(0, ge=0, description="else start this far below the head")
    reorg_window: int | None = Field(
        None, ge=1, description="block hashes kept; default max(2 x confirmations, 64)"
    )
    backfill_blocks: int = Field(
        1000, ge=0, description="how far below the cursor a newly watched address is rescanned"
    )
    deep_reorg_rescan_blocks: int = Field(
        1000,
        ge=0,
        description="after a reorg deeper than the kept hashes, rescan this far below them",
    )
    confirmations: int | None = Field(None, ge=1, description="override the registry's depth")
    stale_seconds: float = Field(60.0, gt=0, description="not ready after this long without a scan")
    clock_skew_seconds: float = Field(
        120.0, ge=0, description="slack between announcement times and block timestamps"
    )

    @field_validator("rpc_urls", mode="before")
    @classmethod
    def _parse_rpc_urls(cls, value: Any) -> list[RpcEndpoint]:
        try:
            return parse_endpoints(value)
        except (ValueError, ValidationError) as exc:
            raise ValueError(f"WATCHER_RPC_URLS: {exc}") from exc

    def require_rpc_url(self, network: str) -> str:
        """The first provider's URL (all of them: `endpoints`)."""
        return self.endpoints(network)[0].url

    def endpoints(self, network: str) -> list[RpcEndpoint]:
        """The configured providers, WATCHER_RPC_URL being a list of one; checks that the
        quorum can be met."""
        if self.rpc_url and self.rpc_urls:
            raise ConfigurationError("set WATCHER_RPC_URL or WATCHER_RPC_URLS, not both")
        if not self.rpc_url and not self.rpc_urls:
            raise ConfigurationError(self._missing_url_message(network))
        try:
            endpoints = self.rpc_urls or parse_endpoints(self.rpc_url)
        except (ValueError, ValidationError) as exc:
            raise ConfigurationError(f"WATCHER_RPC_URL: {exc}") from exc
        if self.rpc_quorum > len(endpoints):
            raise ConfigurationError(
                f"WATCHER_RPC_QUORUM ({self.rpc_quorum}) exceeds the {len(endpoints)} "
                "providers in WATCHER_RPC_URLS"
            )
        return endpoints

    def pool_policy(self) -> PoolPolicy:
        if self.rpc_max_backoff_seconds < self.rpc_backoff_seconds:
            raise ConfigurationError(
                "WATCHER_RPC_MAX_BACKOFF_SECONDS must be at least WATCHER_RPC_BACKOFF_SECONDS"
            )
        return PoolPolicy(
            quorum=self.rpc_quorum,
            max_lag_blocks=self.rpc_max_lag_blocks,
            backoff_seconds=self.rpc_backoff_seconds,
            max_backoff_seconds=self.rpc_max_backoff_seconds,
        )

    def _missing_url_message(self, network: str) -> str:
        return (
            f"WATCHER_RPC_URL is required: the JSON-RPC URL of the {network} node "
            "(or WATCHER_RPC_URLS, several providers)"
        )

    def engine_config(self, network: Network) -> EngineConfig:
        confirmations = self.confirmations or network.confirmations
        if self.max_window_blocks < self.window_blocks:
            raise ConfigurationError(
                "WATCHER_MAX_WINDOW_BLOCKS must be at least WATCHER_WINDOW_BLOCKS "
                f"({self.max_window_blocks} < {self.window_blocks})"
            )
        reorg_window = self.reorg_window or max(2 * confirmations, MIN_REORG_WINDOW)
        if reorg_window < confirmations:
            raise ConfigurationError(
                f"WATCHER_REORG_WINDOW ({reorg_window}) must be at least the confirmation "
                f"depth ({confirmations}), or a reorg of a pending transfer could go unseen"
            )
        return EngineConfig(
            confirmations=confirmations,
            poll_interval_seconds=self.poll_interval_seconds,
            window_blocks=self.window_blocks,
            max_window_blocks=self.max_window_blocks,
            reorg_window=reorg_window,
            backfill_blocks=self.backfill_blocks,
            deep_reorg_rescan_blocks=self.deep_reorg_rescan_blocks,
            start_block=self.start_block,
            start_blocks_back=self.start_blocks_back,
            stale_seconds=self.stale_seconds,
            clock_skew_seconds=self.clock_skew_seconds,
        )


class WatcherServiceSettings(ServiceSettings):
    """Settings of a watcher service: the shared concerns plus `WATCHER_*`."""

    watcher: WatcherSettings = Field(default_factory=WatcherSettings)


@dataclass(frozen=True)
class EngineConfig:
    confirmations: int
    reorg_window: int
    poll_interval_seconds: float = 1.0
    window_blocks: int = 500
    max_window_blocks: int = 2000
    backfill_blocks: int = 1000
    start_block: int | None = None
    start_blocks_back: int = 0
    stale_seconds: float = 60.0
    clock_skew_seconds: float = 120.0
    # Successes in a row before a shrunk window doubles again.
    grow_after: int = 3
    # Stored hashes compared per batch while walking down to a common ancestor.
    reorg_batch: int = 32
    # A standby replica retries the scanner lock this often.
    standby_poll_seconds: float = 2.0
    # Ceiling of the back-off between failed ticks.
    max_error_backoff_seconds: float = 30.0
    # After a reorg deeper than the kept hashes, recorded transfers this far below the
    # oldest kept hash are checked against the chain.
    deep_reorg_blocks: int = 10_000
    # After a reorg deeper than the kept hashes, the scan restarts this many blocks below
    # the oldest kept one (or below the lowest recorded transfer the reorg replaced).
    deep_reorg_rescan_blocks: int = 1000
    # At most this many newly announced addresses are backfilled per tick.
    backfill_batch: int = 1000

    def __post_init__(self) -> None:
        if self.confirmations < 1:
            raise ValueError("confirmations must be at least 1")
        if self.reorg_window < self.confirmations:
            raise ValueError("reorg_window must be at least the confirmation depth")
        if self.deep_reorg_rescan_blocks < 0:
            raise ValueError("deep_reorg_rescan_blocks must not be negative")
        if not 1 <= self.window_blocks <= self.max_window_blocks:
            raise ValueError("need 1 <= window_blocks <= max_window_blocks")
