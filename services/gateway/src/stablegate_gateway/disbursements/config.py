"""Refund and payout settings (env prefix `GATEWAY_`): the four-eyes limit and how often
pending ones are planned into signing rounds."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from stablegate_gateway.pricing.config import NonNegative


class DisbursementSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    disbursement_approval_limit: NonNegative = Field(
        Decimal(10_000),
        description="a refund or payout above this many token units waits for two admins' "
        "approvals in the dashboard (four eyes); a merchant's own limit overrides it",
    )
    disbursement_schedule_minutes: int = Field(
        5,
        ge=0,
        description="plan pending refunds and payouts every this many minutes; 0: "
        "only on demand (ops API, CLI, dashboard)",
    )

    @property
    def schedule_seconds(self) -> float | None:
        minutes = self.disbursement_schedule_minutes
        return minutes * 60.0 if minutes else None
