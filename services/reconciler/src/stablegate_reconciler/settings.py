"""Reconciler settings: the shared concerns plus the chain nodes it reads balances from."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stablegate_common.config import ServiceSettings


class ReconcilerConcern(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECONCILER_", extra="ignore")

    # JSON in the environment: RECONCILER_RPC_URLS='{"ethereum": "http://node:8545"}'.
    # A network without a URL is not reconciled (its ledger is still kept).
    rpc_urls: dict[str, str] = Field(default_factory=dict)
    interval_seconds: float = Field(60.0, gt=0)
    # Balance reads in flight per network; a node that rate-limits wants fewer.
    concurrency: int = Field(8, ge=1, le=256)
    # balanceOf calls per JSON-RPC batch (EVM nodes); providers cap batches (often 100).
    batch_size: int = Field(100, ge=1, le=1000)

    @field_validator("rpc_urls")
    @classmethod
    def _urls_look_like_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for network, url in value.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"RPC URL for {network!r} must be http(s)://…, got {url!r}")
        return value


class ReconcilerSettings(ServiceSettings):
    reconciler: ReconcilerConcern = Field(default_factory=ReconcilerConcern)
