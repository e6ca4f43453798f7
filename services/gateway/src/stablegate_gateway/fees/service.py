"""A merchant's fee terms: its own processing-fee settings where it has them, the
gateway's defaults (GATEWAY_FEE_*) where it does not, and the per-intent `fee_payer`."""

from __future__ import annotations

from decimal import Decimal

from stablegate_common.core.errors import InvalidState
from stablegate_gateway.core.fees import FeePayer, FeeSchedule
from stablegate_gateway.merchants.models import Merchant
from stablegate_gateway.pricing.config import PricingConfig


def fee_schedule(merchant: Merchant, config: PricingConfig) -> FeeSchedule:
    try:
        return FeeSchedule(
            percent=_own(merchant.fee_percent, config.fee_percent),
            fixed=_own(merchant.fee_fixed, config.fee_fixed),
            minimum=_own(merchant.fee_min, config.fee_min),
            maximum=merchant.fee_max if merchant.fee_max is not None else config.fee_max,
        )
    except ValueError as exc:  # a merchant's minimum above the default maximum, say
        raise InvalidState(
            f"The fee settings of merchant {merchant.id} are inconsistent: {exc}.",
            code="fee_settings_invalid",
        ) from exc


def fee_payer(merchant: Merchant, config: PricingConfig, requested: str | None) -> FeePayer:
    """The request's choice, else the merchant's, else the gateway's default."""
    chosen = requested or merchant.fee_payer
    return FeePayer(chosen) if chosen else config.fee_payer


def merchant_fee_terms(
    merchant: Merchant, config: PricingConfig, requested_payer: str | None
) -> tuple[FeeSchedule, FeePayer]:
    return fee_schedule(merchant, config), fee_payer(merchant, config, requested_payer)


def _own(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value
