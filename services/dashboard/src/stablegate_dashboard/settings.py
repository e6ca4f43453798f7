"""Dashboard settings (env prefix `DASHBOARD_`), on top of what every service reads.

The gateway key (`DASHBOARD_GATEWAY_API_KEY`) is what the dashboard acts with: redelivering
a webhook or canceling an intent goes through the gateway's public API, never its schema.
The gateway's API is scoped to one merchant, so the key is a secret key of the operator's
own merchant (or a key made for the dashboard on it): actions reach that merchant's
intents and webhook deliveries only. Without a key the pages still show everything the
read models hold; only those actions and the webhook page are unavailable.

The ops token (`DASHBOARD_GATEWAY_OPS_TOKEN`, the gateway's `GATEWAY_OPS_TOKEN`) reaches the
gateway's ops API: the "Outgoing" page (signing rounds of funds out) reads and acts
through it. Without it that page says funds out is not configured.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stablegate_common.config import ServiceSettings

# 32+ characters, so the JWT signer accepts it in development; refused in production.
DEV_PLACEHOLDER = "dev-only-dashboard-secret-change-me-0000"
_MIN_SECRET_CHARS = 32


class DashboardConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DASHBOARD_", extra="ignore")

    jwt_secret: SecretStr = Field(
        SecretStr(DEV_PLACEHOLDER), description="signs the session cookie's JWT (32+ characters)"
    )
    session_ttl_seconds: int = Field(8 * 3600, ge=300, le=7 * 86_400)
    cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto", description="the Secure cookie flag; auto = when the request came over https"
    )
    gateway_url: str = Field("http://127.0.0.1:8000", description="the gateway's base URL")
    gateway_api_key: SecretStr = Field(
        SecretStr(""), description="secret key the dashboard acts with (see module docstring)"
    )
    gateway_ops_token: SecretStr = Field(
        SecretStr(""), description="bearer token of the gateway's ops API (GATEWAY_OPS_TOKEN)"
    )
    gateway_timeout_seconds: float = Field(10.0, gt=0)
    service_urls: dict[str, str] = Field(
        default_factory=dict,
        description='services the system page probes, JSON: {"gateway": "http://…:8000"}',
    )
    address_cooldown_seconds: int = Field(
        86_400, ge=0, description="mirror of GATEWAY_ADDRESS_COOLDOWN_SECONDS, for the pool view"
    )
    live_poll_seconds: float = Field(1.0, gt=0, le=60)
    watcher_stale_seconds: float = Field(
        120.0, gt=0, description="a watcher silent this long is shown as stale"
    )
    watcher_lag_blocks: int = Field(20, ge=0, description="lag above this is shown as lagging")


class DashboardSettings(ServiceSettings):
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Self:
        if self.environment != "production":
            return self
        secret = self.dashboard.jwt_secret.get_secret_value()
        if secret == DEV_PLACEHOLDER or len(secret) < _MIN_SECRET_CHARS:
            raise ValueError(
                "DASHBOARD_JWT_SECRET must be set to a random value of 32+ characters in production"
            )
        if self.dashboard.cookie_secure == "never":
            raise ValueError("DASHBOARD_COOKIE_SECURE=never is refused in production")
        return self
