"""Gateway configuration (env prefix `GATEWAY_`), on top of what every service reads."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stablegate_common.config import ServiceSettings

# 32+ characters, so the JWT signer accepts it in development; refused in production.
DEV_PLACEHOLDER = "dev-only-change-me-dev-only-change-me"


class GatewayConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    evm_xpub: str = Field(
        "",
        description="account-level xpub (m/44'/60'/0') deposit addresses are derived from; "
        "the devnet uses the published test mnemonic's",
    )
    tron_xpub: str = Field(
        "", description="account-level xpub (m/44'/195'/0') for Tron; empty disables Tron intents"
    )
    public_base_url: str = "http://127.0.0.1:8000"
    api_key_pepper: SecretStr = SecretStr(DEV_PLACEHOLDER)
    jwt_secret: SecretStr = SecretStr(DEV_PLACEHOLDER)
    jwt_ttl_seconds: int = Field(900, ge=60, le=86_400)
    min_expires_in_seconds: int = Field(60, ge=1)
    default_expires_in_seconds: int = Field(3600, ge=60)
    max_expires_in_seconds: int = Field(7 * 86_400, ge=60)
    address_pool_min_free: int = Field(200, ge=1, description="free addresses kept derived ahead")
    address_pool_batch: int = Field(500, ge=1)
    address_cooldown_seconds: int = Field(86_400, ge=0)
    confirmations: dict[str, int] = Field(
        default_factory=dict, description='per-network override, JSON: {"ethereum": 12}'
    )
    webhook_allow_private_urls: bool = False
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    webhook_max_attempts: int = Field(20, ge=1)
    webhook_workers: int = Field(16, ge=1)
    expiry_job_seconds: float = Field(5.0, gt=0)
    expiry_batch_size: int = Field(500, ge=1, description="intents expired per transaction")
    address_job_seconds: float = Field(
        30.0, gt=0, description="how often cooled addresses are released and the pool topped up"
    )
    attribution_skew_seconds: int = Field(
        120,
        ge=0,
        description="a transfer counts for an intent created up to this long after its block "
        "(chain clocks and block times lag the gateway's)",
    )
    webhook_backoff_base_seconds: float = Field(10.0, gt=0, description="first retry's delay cap")
    webhook_backoff_cap_seconds: float = Field(
        43_200.0, gt=0, description="longest delay between retries (full jitter below it)"
    )
    webhook_poll_seconds: float = Field(
        0.5, gt=0, description="how often the delivery worker looks for due retries"
    )
    network_lagging_seconds: float = Field(
        120.0, gt=0, description="a watcher silent this long is reported as lagging"
    )
    network_lagging_blocks: int = Field(
        20, ge=0, description="a watcher this many blocks behind its head is reported as lagging"
    )


class GatewaySettings(ServiceSettings):
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)

    @model_validator(mode="after")
    def _refuse_placeholders_outside_development(self) -> Self:
        if self.environment != "production":
            return self
        for name in ("api_key_pepper", "jwt_secret"):
            value: SecretStr = getattr(self.gateway, name)
            if value.get_secret_value() == DEV_PLACEHOLDER or len(value.get_secret_value()) < 32:
                raise ValueError(
                    f"GATEWAY_{name.upper()} must be set to a random value "
                    "of 32+ characters in production"
                )
        return self
