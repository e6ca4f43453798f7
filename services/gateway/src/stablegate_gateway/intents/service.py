"""Payment intents as the merchant drives them: create (validate, allocate an address,
record), read, list and cancel. Chain-driven changes live in `transfers.service`.

Every write here happens only after the whole request was validated, and ends with
`events.service.record_intent_change` in the same transaction, so the bus event, the
merchant event and the webhooks commit with the change or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.assets import Asset, Network
from stablegate_common.core.errors import InvalidRequest, NotFound
from stablegate_common.core.ids import new_id
from stablegate_gateway.addresses import service as addresses
from stablegate_gateway.api.pagination import Page, PageParams, paginate
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.core.lifecycle import Cancel, Status
from stablegate_gateway.events.service import record_intent_change
from stablegate_gateway.fees.service import merchant_fee_terms
from stablegate_gateway.intents import repository
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.intents.repository import IntentFilters
from stablegate_gateway.intents.schemas import CreatePaymentIntent
from stablegate_gateway.intents.tolerance import intent_tolerance, requested_tolerance
from stablegate_gateway.intents.transitions import advance_intent
from stablegate_gateway.merchants.models import Merchant
from stablegate_gateway.pricing.quotes import (
    PriceTerms,
    check_rate_lock,
    intent_pricing_columns,
    price_terms,
)


@dataclass(frozen=True)
class IntentSpec:
    """A creation request that passed every check; nothing is written before this exists."""

    network: Network
    asset: Asset
    terms: PriceTerms  # the price as asked: amount and currency (a token or a fiat code)
    fee_payer: str | None  # the request's choice, if it made one
    expires_in: int
    reference: str | None
    description: str | None
    metadata: Mapping[str, str]


def validate_create(ctx: GatewayContext, params: CreatePaymentIntent) -> IntentSpec:
    network = ctx.registry.network(params.network.strip().lower())
    pricing = ctx.settings.pricing
    terms = price_terms(
        network,
        currency=params.currency,
        asset=params.asset,
        amount=params.amount,
        fiat_currencies=pricing.fiat_currencies,
    )
    expires_in = _expires_in(ctx, params.expires_in)
    check_rate_lock(terms, expires_in, pricing.rates_max_lock_seconds)
    return IntentSpec(
        network=network,
        asset=terms.asset,
        terms=terms,
        fee_payer=params.fee_payer,
        expires_in=expires_in,
        reference=params.reference,
        description=params.description,
        metadata=dict(params.metadata),
    )


def _expires_in(ctx: GatewayContext, requested: int | None) -> int:
    config = ctx.settings.gateway
    if requested is None:
        return config.default_expires_in_seconds
    low, high = config.min_expires_in_seconds, config.max_expires_in_seconds
    if not low <= requested <= high:
        raise InvalidRequest(
            f"expires_in must be between {low} and {high} seconds.",
            param="expires_in",
            code="parameter_invalid",
        )
    return requested


async def create_intent(
    session: AsyncSession, ctx: GatewayContext, merchant_id: str, params: CreatePaymentIntent
) -> PaymentIntent:
    spec = validate_create(ctx, params)
    # Rates and network costs before any database work: a stale feed fails the request
    # here, with nothing written and no connection held while the feed is asked.
    market = await ctx.pricing.market(spec.network.name)
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None:  # the API key was just authenticated, so this is a deleted merchant
        raise NotFound(f"No such merchant: {merchant_id!r}", param=None)
    tolerance = intent_tolerance(merchant, requested_tolerance(params), spec.asset.decimals)
    schedule, payer = merchant_fee_terms(merchant, ctx.settings.pricing, spec.fee_payer)
    quote = ctx.pricing.quote(
        spec.terms, market, network=spec.network, schedule=schedule, payer=payer
    )
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=spec.expires_in)
    intent_id = new_id("pi")
    address = await addresses.allocate(session, ctx, spec.network, intent_id=intent_id, now=now)
    intent = PaymentIntent(
        id=intent_id,
        merchant_id=merchant_id,
        status=Status.AWAITING_PAYMENT.value,
        exception=None,
        network=spec.network.name,
        asset=spec.asset.symbol,
        token_contract=spec.asset.contract,
        decimals=spec.asset.decimals,
        amount_base_units=quote.amount_due_base_units,
        amount_pending_base_units=0,
        amount_confirmed_base_units=0,
        funded_before_end=False,
        deposit_address=address.address,
        deposit_address_id=address.id,
        confirmations_required=ctx.confirmations_for(spec.network.name),
        reference=spec.reference,
        description=spec.description,
        metadata_=dict(spec.metadata),
        success_url=params.success_url,
        cancel_url=params.cancel_url,
        underpayment_tolerance_percent=tolerance.percent,
        underpayment_tolerance_base_units=tolerance.amount_base_units,
        **intent_pricing_columns(quote, expires_at),
        version=1,
        expires_at=expires_at,
        created_at=now,
        updated_at=now,
        # Every column is given, so nothing has to be read back after the insert.
        paid_at=None,
        canceled_at=None,
        expired_at=None,
        resolution=None,
        resolved_at=None,
    )
    await repository.add(session, intent)
    await record_intent_change(session, ctx, intent, [], previous_status=None)
    return intent


async def get_intent(session: AsyncSession, merchant_id: str, intent_id: str) -> PaymentIntent:
    return _found(await repository.get(session, merchant_id, intent_id), intent_id)


async def list_intents(
    session: AsyncSession, merchant_id: str, filters: IntentFilters, page: PageParams
) -> Page[PaymentIntent]:
    return await paginate(
        session, repository.list_query(merchant_id, filters), PaymentIntent.id, page
    )


async def cancel_intent(
    session: AsyncSession, ctx: GatewayContext, merchant_id: str, intent_id: str
) -> PaymentIntent:
    """Cancel an intent that has seen no funds; its address starts cooling down.

    The row lock orders this against a transfer being applied to the same intent; the
    state machine refuses (InvalidState `intent_not_cancelable`) once funds were seen.
    """
    intent = _found(
        await repository.get(session, merchant_id, intent_id, for_update=True), intent_id
    )
    await advance_intent(session, ctx, intent, [Cancel()], now=datetime.now(UTC))
    return intent


def _found(intent: PaymentIntent | None, intent_id: str) -> PaymentIntent:
    if intent is None:
        raise NotFound(f"No such payment_intent: {intent_id!r}", param="id")
    return intent
