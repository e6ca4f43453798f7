"""Underpayment tolerance: the merchant's default, a per-intent override, and how both
are written (decimal strings) and stored (percent as Decimal, amount in base units).

A merchant sets a default (`stablegate-gateway set-underpayment-tolerance`); a create
request may replace it for one intent with `underpayment_tolerance: {"percent": "0.5",
"amount": "0.10"}` (a key left out counts as zero). The policy is copied onto the intent
when it is created, so changing the default never changes an intent already issued. The
tolerated shortfall is the larger of the two (`core.lifecycle.UnderpaymentTolerance`).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.errors import InvalidRequest, NotFound
from stablegate_common.core.money import format_amount, to_base_units
from stablegate_gateway.core.lifecycle import UnderpaymentTolerance
from stablegate_gateway.intents.schemas import CreatePaymentIntent
from stablegate_gateway.merchants.models import Merchant

PERCENT_PLACES = 4  # NUMERIC(7,4) on merchants and intents
MERCHANT_AMOUNT_PLACES = 18  # NUMERIC(38,18): any token's decimals
MAX_PERCENT = Decimal(100)
FIELD = "underpayment_tolerance"


def parse_decimal(text: str | None, *, places: int, param: str) -> Decimal:
    """A non-negative decimal string with at most `places` decimals; None counts as 0."""
    if text is None:
        return Decimal(0)
    stripped = text.strip() if isinstance(text, str) else ""
    if not stripped or any(c not in "0123456789." for c in stripped):
        raise _invalid(param, 'must be a non-negative decimal string such as "0.5"')
    try:
        value = Decimal(stripped)
    except InvalidOperation:
        raise _invalid(param, "is not a decimal number") from None
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        raise _invalid(param, f"has more than {places} decimal places")
    return value


def parse_percent(text: str | None, *, param: str) -> Decimal:
    value = parse_decimal(text, places=PERCENT_PLACES, param=param)
    if value >= MAX_PERCENT:
        raise _invalid(param, "must be below 100")
    return value


def parse_amount_base_units(text: str | None, decimals: int, *, param: str) -> int:
    value = parse_decimal(text, places=decimals, param=param)
    if value.adjusted() >= 60:
        raise _invalid(param, "is too large")
    return to_base_units(value, decimals)


def tolerance_for_request(
    requested_percent: str | None, requested_amount: str | None, decimals: int
) -> UnderpaymentTolerance:
    """A create request's override, in the intent's token units."""
    return UnderpaymentTolerance(
        percent=parse_percent(requested_percent, param=f"{FIELD}[percent]"),
        amount_base_units=parse_amount_base_units(
            requested_amount, decimals, param=f"{FIELD}[amount]"
        ),
    )


def merchant_default(merchant: Merchant, decimals: int) -> UnderpaymentTolerance:
    """The merchant's default for a token of `decimals`: the amount is kept in token units
    and rounded down to what the token can express."""
    amount = Decimal(merchant.underpayment_tolerance_amount)
    step = Decimal(1).scaleb(-decimals)
    return UnderpaymentTolerance(
        percent=Decimal(merchant.underpayment_tolerance_percent),
        amount_base_units=to_base_units(amount.quantize(step, rounding=ROUND_FLOOR), decimals),
    )


def requested_tolerance(params: CreatePaymentIntent) -> tuple[str | None, str | None] | None:
    requested = params.underpayment_tolerance
    return None if requested is None else (requested.percent, requested.amount)


def intent_tolerance(
    merchant: Merchant, requested: tuple[str | None, str | None] | None, decimals: int
) -> UnderpaymentTolerance:
    """The policy a new intent gets: the request's `(percent, amount)` if it gave one,
    else the merchant's default."""
    if requested is not None:
        return tolerance_for_request(*requested, decimals)
    return merchant_default(merchant, decimals)


async def set_merchant_default(
    session: AsyncSession, merchant_id: str, *, percent: str | None, amount: str | None
) -> Merchant:
    """Replace a merchant's default (intents already created keep theirs)."""
    merchant = await session.get(Merchant, merchant_id, with_for_update=True)
    if merchant is None:
        raise NotFound(f"No such merchant: {merchant_id!r}", param="merchant")
    merchant.underpayment_tolerance_percent = parse_percent(percent, param="percent")
    merchant.underpayment_tolerance_amount = parse_decimal(
        amount, places=MERCHANT_AMOUNT_PLACES, param="amount"
    )
    await session.flush()
    return merchant


def present_tolerance(percent: Decimal, amount_base_units: int, decimals: int) -> dict[str, str]:
    """`{"percent": "0.5", "amount": "0.10"}` as the intent object shows it."""
    return {
        "percent": format_decimal(percent),
        "amount": format_amount(amount_base_units, decimals),
    }


def format_decimal(value: Decimal) -> str:
    """`0.5000` as "0.5", `10` as "10" (no exponent, no trailing zeros)."""
    return format(Decimal(value).normalize(), "f")


def _invalid(param: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"{param} {problem}.", param=param, code="parameter_invalid")
