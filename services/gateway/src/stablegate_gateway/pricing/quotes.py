"""Pricing one intent: what the merchant asked (`PriceTerms`), and what the customer owes
at the rates and network costs of the moment (`PriceQuote`). No I/O: the market data is
fetched first (`Pricing.market`), so a stale feed fails the request before anything is
written.

Amounts: `terms.amount` is in `currency` (a fiat code or the token itself);
`amount_base_units` is that price in the asset, rounded up; `amount_due_base_units` adds
the fees when the customer pays them. The intent's `amount_base_units` column holds the
amount due, which is what the payment URI asks for and what detection compares with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from stablegate_common.core.assets import Asset, Network
from stablegate_common.core.errors import InvalidAmount, InvalidRequest, UnknownAsset
from stablegate_common.core.money import MAX_BASE_UNITS, parse_amount, to_base_units
from stablegate_gateway.core.fees import FeePayer, Fees, FeeSchedule, amount_due, quote_fees
from stablegate_gateway.core.rates import RateTable, check_peg, convert_up
from stablegate_gateway.fees.inputs import ObservedCost


@dataclass(frozen=True)
class PriceTerms:
    asset: Asset
    currency: str  # upper case: a fiat code, or the asset's own symbol
    amount: Decimal  # in `currency`
    fiat: bool


@dataclass(frozen=True)
class Market:
    rates: RateTable
    network_cost: ObservedCost


@dataclass(frozen=True)
class PriceQuote:
    terms: PriceTerms
    amount_base_units: int  # the price in the asset, before customer-paid fees
    rate: Decimal | None  # one asset in `currency`; None when priced in the token itself
    rate_source: str | None
    fees: Fees
    fee_payer: FeePayer
    amount_due_base_units: int
    details: dict[str, str]  # the inputs, kept with the intent for audit


def price_terms(
    network: Network,
    *,
    currency: str,
    asset: str | None,
    amount: str,
    fiat_currencies: dict[str, int],
) -> PriceTerms:
    """Check the request's currency, asset and amount together; errors name the field."""
    named = network.asset(asset) if asset is not None else None
    code = currency.strip().upper()
    if code in fiat_currencies:
        if named is None:
            raise InvalidRequest(
                f"asset is required when currency is a fiat code ({code}): name the token "
                f"to be paid ({_symbols(network)}).",
                param="asset",
                code="parameter_missing",
            )
        return PriceTerms(named, code, parse_amount(amount, fiat_currencies[code]), fiat=True)
    token = _token(network, code, fiat_currencies)
    if named is not None and named != token:
        raise InvalidRequest(
            f"asset {asset!r} must equal currency {currency!r} (or price in a fiat currency).",
            param="asset",
            code="parameter_invalid",
        )
    return PriceTerms(token, token.symbol, parse_amount(amount, token.decimals), fiat=False)


def check_rate_lock(terms: PriceTerms, expires_in: int, max_lock_seconds: int) -> None:
    """A fiat price is locked until expiry; refuse a lock longer than configured."""
    if terms.fiat and expires_in > max_lock_seconds:
        raise InvalidRequest(
            f"expires_in must be at most {max_lock_seconds} seconds for an intent priced in "
            f"{terms.currency} (the rate is locked until the intent expires).",
            param="expires_in",
            code="parameter_invalid",
        )


def price(
    terms: PriceTerms,
    market: Market,
    *,
    network: Network,
    schedule: FeeSchedule,
    payer: FeePayer,
    coefficient: Decimal,
    depeg_band: Decimal,
) -> PriceQuote:
    decimals = terms.asset.decimals
    symbol = terms.asset.symbol
    rate: Decimal | None = None
    if terms.fiat:
        check_peg(symbol, market.rates.usd_price(symbol), depeg_band)
        rate = market.rates.rate(symbol, terms.currency)
        base_units = convert_up(terms.amount, rate, decimals)
    else:
        base_units = to_base_units(terms.amount, decimals)
    native_price = market.rates.rate(network.native_symbol, symbol)
    cost = market.network_cost.cost
    fees = quote_fees(
        base_units,
        decimals,
        cost=cost,
        native_price=native_price,
        coefficient=coefficient,
        schedule=schedule,
    )
    due = amount_due(base_units, fees, payer)
    if due > MAX_BASE_UNITS:
        raise InvalidAmount("amount", "is too large")
    details = {
        "rates_source": market.rates.source,
        "rates_as_of": market.rates.as_of.isoformat(),
        "native_price": f"1 {network.native_symbol} = {native_price} {symbol}",
        "network_cost_model": type(cost).__name__,
        "network_cost_source": market.network_cost.source,
        **{f"network_cost.{k}": str(v) for k, v in asdict(cost).items()},
        "coefficient": str(coefficient),
        **{f"schedule.{k}": str(v) for k, v in asdict(schedule).items()},
    }
    return PriceQuote(
        terms=terms,
        amount_base_units=base_units,
        rate=rate,
        rate_source=market.rates.source if terms.fiat else None,
        fees=fees,
        fee_payer=payer,
        amount_due_base_units=due,
        details=details,
    )


def _token(network: Network, code: str, fiat_currencies: dict[str, int]) -> Asset:
    try:
        return network.asset(code)
    except UnknownAsset:
        fiat = ", ".join(sorted(fiat_currencies))
        raise UnknownAsset(
            f"currency {code!r} is neither a token accepted on {network.name} "
            f"({_symbols(network)}) nor a fiat currency ({fiat or 'none configured'}).",
            param="currency",
        ) from None


def _symbols(network: Network) -> str:
    return ", ".join(a.symbol for a in network.assets)


def intent_pricing_columns(quote: PriceQuote, expires_at: datetime) -> dict[str, Any]:
    """The payment-intent columns a quote fills (besides `amount_base_units`, the amount
    due). A fiat price is locked until the intent expires."""
    return {
        "currency": quote.terms.currency,
        "amount_requested": quote.terms.amount,
        "rate": quote.rate,
        "rate_source": quote.rate_source,
        "rate_locked_until": expires_at if quote.terms.fiat else None,
        "fee_payer": quote.fee_payer.value,
        "network_fee_base_units": quote.fees.network_fee,
        "processing_fee_base_units": quote.fees.processing_fee,
        "pricing_details": quote.details,
    }
