"""Reconciler settings: the shared concerns plus the chain nodes it reads balances from."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stablegate_common.chains.endpoints import RpcEndpoint, parse_endpoints
from stablegate_common.chains.pool import PoolPolicy
from stablegate_common.config import ServiceSettings


class ReconcilerConcern(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECONCILER_", extra="ignore")

    # JSON in the environment: RECONCILER_RPC_URLS='{"ethereum": "http://node:8545"}'; a
    # network's value may list several providers, as WATCHER_RPC_URLS does:
    # '{"ethereum": ["http://a:8545", {"url": "https://b", "weight": 2}]}' or "http://a,http://b".
    # A network without a URL is not reconciled (its ledger is still kept).
    rpc_urls: dict[str, list[RpcEndpoint]] = Field(default_factory=dict)
    # Providers that must reach a head before balances are read below it (each network).
    rpc_quorum: int = Field(1, ge=1)
    rpc_max_lag_blocks: int = Field(3, ge=0)
    rpc_backoff_seconds: float = Field(1.0, gt=0)
    rpc_max_backoff_seconds: float = Field(60.0, gt=0)
    rpc_timeout_seconds: float = Field(10.0, gt=0)
    interval_seconds: float = Field(60.0, gt=0)
    # Balance reads in flight per network; a node that rate-limits wants fewer.
    concurrency: int = Field(8, ge=1, le=256)
    # balanceOf calls per JSON-RPC batch (EVM nodes); providers cap batches (often 100).
    batch_size: int = Field(100, ge=1, le=1000)
    # Funds out: how long a holding short by exactly an outgoing transfer in broadcast (mined,
    # its confirmation not booked yet) is excused, from when the ledger learned of it or
    # saw it mined.
    in_flight_grace_seconds: float = Field(900.0, gt=0)

    @field_validator("rpc_urls", mode="before")
    @classmethod
    def _parse_endpoints(cls, value: Any) -> dict[str, list[RpcEndpoint]]:
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object of network → URL(s)")
        parsed: dict[str, list[RpcEndpoint]] = {}
        for network, urls in value.items():
            try:
                parsed[network] = parse_endpoints(urls)
            except (ValueError, ValidationError) as exc:
                raise ValueError(f"RPC URL for {network!r} must be http(s)://…: {exc}") from exc
            if not parsed[network]:
                raise ValueError(f"no RPC URL for {network!r}")
        return parsed

    def pool_policy(self, network: str) -> PoolPolicy:
        """How `network`'s providers are judged; ValueError names the variable at fault."""
        providers = len(self.rpc_urls.get(network, []))
        if self.rpc_quorum > providers:
            raise ValueError(
                f"RECONCILER_RPC_QUORUM ({self.rpc_quorum}) exceeds the {providers} providers "
                f"of {network!r} in RECONCILER_RPC_URLS"
            )
        if self.rpc_max_backoff_seconds < self.rpc_backoff_seconds:
            raise ValueError(
                "RECONCILER_RPC_MAX_BACKOFF_SECONDS must be at least RECONCILER_RPC_BACKOFF_SECONDS"
            )
        return PoolPolicy(
            quorum=self.rpc_quorum,
            max_lag_blocks=self.rpc_max_lag_blocks,
            backoff_seconds=self.rpc_backoff_seconds,
            max_backoff_seconds=self.rpc_max_backoff_seconds,
        )


class ReconcilerSettings(ServiceSettings):
    reconciler: ReconcilerConcern = Field(default_factory=ReconcilerConcern)
