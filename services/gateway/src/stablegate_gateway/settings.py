"""Gateway configuration (env prefix `GATEWAY_`), on top of what every service reads."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stablegate_common.config import ServiceSettings
from stablegate_gateway.disbursements.config import DisbursementSettings
from stablegate_gateway.outgoing.config import OutgoingSettings, check_fee_wallets
from stablegate_gateway.outgoing.sweep_config import SweepSettings
from stablegate_gateway.pricing.config import PricingConfig

# 32+ characters, so the JWT signer accepts it in development; refused in production.
DEV_PLACEHOLDER = "dev-only-change-me-dev-only-change-me"


class RateLimitRule(BaseModel):
    """A token bucket: `burst` requests at once, refilled at `per_second`."""

    model_config = ConfigDict(extra="forbid")

    per_second: float = Field(gt=0)
    burst: int = Field(ge=1)


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
    webhook_max_attempts: int = Field(
        13, ge=1, description="attempts per delivery: by default the last is ≈72 h after the first"
    )
    webhook_workers: int = Field(16, ge=1)
    background_pool_size: int = Field(
        20,
        ge=1,
        description="database connections of the consumers, webhook workers, relay and jobs, "
        "a pool apart from the API's (DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW), so a "
        "backlog of background work never makes an API request wait for a connection",
    )
    expiry_job_seconds: float = Field(5.0, gt=0)
    expiry_batch_size: int = Field(500, ge=1, description="intents expired per transaction")
    address_job_seconds: float = Field(
        30.0, gt=0, description="how often cooled addresses are released and the pool topped up"
    )
    housekeeping_job_seconds: float = Field(
        600.0, gt=0, description="how often expired idempotency keys and inbox claims are purged"
    )
    inbox_retention_seconds: int = Field(
        7 * 86_400,
        ge=3600,
        description="consumed event ids are remembered (duplicates dropped) this long; keep it "
        "well beyond any redelivery or dead-letter replay window",
    )
    attribution_skew_seconds: int = Field(
        120,
        ge=0,
        description="a transfer counts for an intent created up to this long after its block, "
        "and as paid in time when its block is at most this much younger than the expiry "
        "(chain clocks and block times lag the gateway's)",
    )
    webhook_backoff_base_seconds: float = Field(
        60.0, gt=0, description="delay before the first retry (before jitter)"
    )
    webhook_backoff_factor: float = Field(
        3.0, ge=1, description="each retry waits this many times longer than the one before"
    )
    webhook_backoff_cap_seconds: float = Field(
        39_600.0, gt=0, description="longest delay between two attempts (before jitter)"
    )
    webhook_backoff_jitter: float = Field(
        0.2, ge=0, le=0.5, description="each delay is moved by up to ± this fraction, at random"
    )
    webhook_secret_overlap_seconds: int = Field(
        86_400, ge=0, description="how long a rolled secret still signs, unless `expires_in` says"
    )
    webhook_secret_overlap_max_seconds: int = Field(
        7 * 86_400, ge=0, description="the longest `expires_in` a secret roll accepts"
    )
    idempotency_lock_seconds: float = Field(
        60.0,
        gt=0,
        description="an Idempotency-Key claimed by a request that never finished (a crash) "
        "is free again after this long",
    )
    idempotency_retention_seconds: int = Field(
        86_400, ge=3600, description="stored responses are kept (and replayed) this long"
    )
    rate_limit_enabled: bool = True
    rate_limit_per_second: float = Field(
        100.0, gt=0, description="requests per second per API key, sustained"
    )
    rate_limit_burst: int = Field(200, ge=1, description="requests per API key in a burst")
    rate_limit_overrides: dict[str, RateLimitRule] = Field(
        default_factory=dict,
        description="per merchant or API key id, JSON: "
        '{"mer_…": {"per_second": 500, "burst": 1000}}',
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
    # Rates, the de-peg guard and fees (also GATEWAY_*; docs/pricing.md).
    pricing: PricingConfig = Field(default_factory=PricingConfig)
    # --- sweeps (issue 14, H-plan): thresholds, dust, gas margin, schedule, planner nodes.
    sweeps: SweepSettings = Field(default_factory=SweepSettings)
    # --- end sweeps
    # --- funds out (issue 14): treasury, fee wallets, ops token (outgoing/config.py) ---
    outgoing: OutgoingSettings = Field(default_factory=OutgoingSettings)
    # --- refunds and payouts (issue 15): the four-eyes limit, the schedule.
    disbursements: DisbursementSettings = Field(default_factory=DisbursementSettings)

    @model_validator(mode="after")
    def _fee_wallets_derive_from_the_xpubs(self) -> Self:
        check_fee_wallets(
            self.outgoing, evm_xpub=self.gateway.evm_xpub, tron_xpub=self.gateway.tron_xpub
        )
        return self

    # --- end funds out ---

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
