"""Refunds and payouts as the merchant drives them: create, read, list, cancel; and the
dashboard's four-eyes approval.

Every check runs before anything is written. What is refundable and what is payable are
read and changed under locks, so concurrent requests can never together pass them:
- one advisory lock per merchant, network and asset (`funds-out:…`), taken first by every
  refund and payout, orders them against each other;
- a refund also holds its intent's row lock, under which `amount_refunded` changes.

What a merchant may pay out is the least of two figures:
- what the gateway itself records as owed: the confirmed amounts of its intents on that
  network and asset, less every refund and payout not failed or canceled (exact, in the
  same transaction: this is what makes the race safe);
- what the reconciler's ledger shows available (`GET /v1/balances`, which already leaves
  out what it holds reserved for signed ones), less those not yet signed (which the
  ledger cannot know of yet). The ledger lags the gateway by the bus: a payment confirmed
  a moment ago may not be payable yet.
A refund is bounded by its intent's refundable amount and by the first figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.assets import Asset, Network
from stablegate_common.core.errors import InvalidRequest, InvalidState, NotFound
from stablegate_common.core.ids import new_id
from stablegate_common.core.money import (
    format_amount,
    from_base_units,
    parse_amount,
    to_base_units,
)
from stablegate_gateway.api.pagination import Page, PageParams, paginate
from stablegate_gateway.balances.models import Balance
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.disbursements import records
from stablegate_gateway.disbursements.destinations import check_not_ours, parse_destination
from stablegate_gateway.disbursements.models import Disbursement
from stablegate_gateway.disbursements.schemas import CreatePayout, CreateRefund
from stablegate_gateway.disbursements.states import (
    CANCELABLE,
    COMMITTED,
    DisbursementStatus,
)
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.merchants.models import Merchant
from stablegate_gateway.outgoing.models import OutgoingTransfer

PREFIX = {"refund": "re", "payout": "po"}
APPROVALS_NEEDED = 2
_COMMITTED = [s.value for s in COMMITTED]
_NOT_SIGNED = [DisbursementStatus.PENDING.value, DisbursementStatus.AWAITING_SIGNATURE.value]


class IntentNotRefundable(InvalidRequest):
    code = "intent_not_refundable"


class AmountExceedsRefundable(InvalidRequest):
    code = "amount_exceeds_refundable"


class InsufficientBalance(InvalidRequest):
    code = "insufficient_balance"


@dataclass(frozen=True)
class Filters:
    kind: str
    status: str | None = None
    payment_intent: str | None = None


# --- create -------------------------------------------------------------------------------


async def create_refund(
    session: AsyncSession, ctx: GatewayContext, merchant_id: str, key_id: str, params: CreateRefund
) -> Disbursement:
    intent = await session.scalar(
        select(PaymentIntent).where(
            PaymentIntent.id == params.payment_intent, PaymentIntent.merchant_id == merchant_id
        )
    )
    if intent is None:
        raise NotFound(f"No such payment_intent: {params.payment_intent!r}", param="payment_intent")
    network = ctx.registry.network(intent.network)
    destination = parse_destination(network, params.destination_address)
    requested = (
        None
        if params.amount is None
        else to_base_units(parse_amount(params.amount, intent.decimals), intent.decimals)
    )
    await check_not_ours(session, network, destination, ctx.settings.outgoing)
    await _lock_funds(session, merchant_id, intent.network, intent.asset)
    intent = await session.scalar(
        select(PaymentIntent)
        .where(PaymentIntent.id == intent.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert intent is not None  # it was there a moment ago, and intents are never deleted
    if intent.amount_confirmed_base_units == 0:
        raise IntentNotRefundable(
            f"payment_intent {intent.id} has received no confirmed funds to refund",
            param="payment_intent",
        )
    refundable = intent.amount_confirmed_base_units - intent.amount_refunded_base_units
    amount = refundable if requested is None else requested
    if amount <= 0 or amount > refundable:
        raise AmountExceedsRefundable(
            f"{format_amount(max(refundable, 0), intent.decimals)} {intent.asset} of "
            f"{intent.id} is refundable; {format_amount(amount, intent.decimals)} was asked",
            param="amount",
        )
    owed = await _owed(session, merchant_id, intent.network, intent.asset)
    if amount > owed:
        raise InsufficientBalance(
            f"the merchant's {intent.asset} balance on {intent.network} is "
            f"{format_amount(max(owed, 0), intent.decimals)} (refunds and payouts in flight "
            "included); the refund would overdraw it",
            param="amount",
        )
    intent.amount_refunded_base_units += amount
    disbursement = await _new(
        session,
        ctx,
        kind="refund",
        merchant_id=merchant_id,
        key_id=key_id,
        network=network,
        asset=network.asset(intent.asset),
        amount=amount,
        destination=destination,
        metadata=params.metadata,
        payment_intent_id=intent.id,
        reason=params.reason or "requested_by_customer",
    )
    return disbursement


async def create_payout(
    session: AsyncSession, ctx: GatewayContext, merchant_id: str, key_id: str, params: CreatePayout
) -> Disbursement:
    network = ctx.registry.network(params.network.strip().lower())
    asset = network.asset(params.asset.strip().upper())
    amount = to_base_units(parse_amount(params.amount, asset.decimals), asset.decimals)
    destination = parse_destination(network, params.destination_address)
    await check_not_ours(session, network, destination, ctx.settings.outgoing)
    await _lock_funds(session, merchant_id, network.name, asset.symbol)
    payable = min(
        await _owed(session, merchant_id, network.name, asset.symbol),
        await _ledger_available(session, merchant_id, network.name, asset.symbol),
    )
    if amount > payable:
        raise InsufficientBalance(
            f"{format_amount(max(payable, 0), asset.decimals)} {asset.symbol} on "
            f"{network.name} is available to pay out (the ledger's balance less refunds and "
            f"payouts in flight); {format_amount(amount, asset.decimals)} was asked",
            param="amount",
        )
    return await _new(
        session,
        ctx,
        kind="payout",
        merchant_id=merchant_id,
        key_id=key_id,
        network=network,
        asset=asset,
        amount=amount,
        destination=destination,
        metadata=params.metadata,
        description=params.description,
    )


async def _new(
    session: AsyncSession,
    ctx: GatewayContext,
    *,
    kind: str,
    merchant_id: str,
    key_id: str,
    network: Network,
    asset: Asset,
    amount: int,
    destination: str,
    metadata: dict[str, str],
    payment_intent_id: str | None = None,
    reason: str | None = None,
    description: str | None = None,
) -> Disbursement:
    limit = await _approval_limit(session, ctx, merchant_id)
    disbursement = Disbursement(
        id=new_id(PREFIX[kind]),
        kind=kind,
        merchant_id=merchant_id,
        payment_intent_id=payment_intent_id,
        status=DisbursementStatus.PENDING.value,
        network=network.name,
        asset=asset.symbol,
        token_contract=asset.contract,
        decimals=asset.decimals,
        amount_base_units=amount,
        destination_address=destination,
        reason=reason,
        description=description,
        metadata_=dict(metadata),
        fee_payer="merchant",
        # Compared as amounts: a limit finer than the asset's decimals is no error.
        requires_approval=from_base_units(amount, asset.decimals) > limit,
        approvals=[],
        created_by=key_id,
        version=1,
    )
    session.add(disbursement)
    await session.flush()
    await records.record_change(session, disbursement, previous_status=None)
    return disbursement


async def _approval_limit(session: AsyncSession, ctx: GatewayContext, merchant_id: str) -> Decimal:
    own = await session.scalar(
        select(Merchant.disbursement_approval_limit).where(Merchant.id == merchant_id)
    )
    return ctx.settings.disbursements.disbursement_approval_limit if own is None else own


async def _lock_funds(session: AsyncSession, merchant_id: str, network: str, asset: str) -> None:
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
        {"key": f"funds-out:{merchant_id}:{network}:{asset}"},
    )


async def _owed(session: AsyncSession, merchant_id: str, network: str, asset: str) -> int:
    """Confirmed intent funds less refunds and payouts not failed or canceled."""
    received = await session.scalar(
        select(func.coalesce(func.sum(PaymentIntent.amount_confirmed_base_units), 0)).where(
            PaymentIntent.merchant_id == merchant_id,
            PaymentIntent.network == network,
            PaymentIntent.asset == asset,
        )
    )
    committed = await _committed(session, merchant_id, network, asset, _COMMITTED)
    return int(received or 0) - committed


async def _ledger_available(
    session: AsyncSession, merchant_id: str, network: str, asset: str
) -> int:
    available = await session.scalar(
        select(Balance.available_base_units).where(
            Balance.merchant_id == merchant_id, Balance.network == network, Balance.asset == asset
        )
    )
    return int(available or 0) - await _committed(session, merchant_id, network, asset, _NOT_SIGNED)


async def _committed(
    session: AsyncSession, merchant_id: str, network: str, asset: str, statuses: list[str]
) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(Disbursement.amount_base_units), 0)).where(
            Disbursement.merchant_id == merchant_id,
            Disbursement.network == network,
            Disbursement.asset == asset,
            Disbursement.status.in_(statuses),
        )
    )
    return int(total or 0)


# --- read ---------------------------------------------------------------------------------


async def get(
    session: AsyncSession, merchant_id: str, kind: str, disbursement_id: str, *, lock: bool = False
) -> Disbursement:
    query = select(Disbursement).where(
        Disbursement.id == disbursement_id,
        Disbursement.merchant_id == merchant_id,
        Disbursement.kind == kind,
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    found = await session.scalar(query)
    if found is None:
        raise NotFound(f"No such {kind}: {disbursement_id!r}", param="id")
    return found


async def list_disbursements(
    session: AsyncSession, merchant_id: str, filters: Filters, page: PageParams
) -> Page[Disbursement]:
    query = select(Disbursement).where(
        Disbursement.merchant_id == merchant_id, Disbursement.kind == filters.kind
    )
    if filters.status is not None:
        query = query.where(Disbursement.status == filters.status)
    if filters.payment_intent is not None:
        query = query.where(Disbursement.payment_intent_id == filters.payment_intent)
    return await paginate(session, query, Disbursement.id, page)


# --- cancel and approve -------------------------------------------------------------------


class NotCancelable(InvalidState):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message, param="id", code=f"{kind}_not_cancelable")


async def cancel(
    session: AsyncSession, ctx: GatewayContext, merchant_id: str, kind: str, disbursement_id: str
) -> Disbursement:
    """Cancel one that no signer has seen: `pending`, not in a signing request handed
    out. One already in a planned round takes that round down with it (the request's
    digest covers the whole round); the others in it go back to pending and are planned
    again. 409 once its request was handed out.

    Locks in the pipeline's order (batch, transfers, then this row, then the intent), so
    a cancel racing the round's issue waits for it rather than deadlocking."""
    # Imported here: the outgoing repository calls back into this package.
    from stablegate_gateway.outgoing import repository as outgoing

    found = await get(session, merchant_id, kind, disbursement_id)
    batch_id = None
    if found.transfer_id is not None:
        transfer = await session.get(OutgoingTransfer, found.transfer_id)
        batch_id = transfer.batch_id if transfer is not None else None
    if batch_id is not None:
        await outgoing.get_batch(session, batch_id, lock=True)
        await outgoing.batch_transfers(session, batch_id, lock=True)
    disbursement = await get(session, merchant_id, kind, disbursement_id, lock=True)
    status = DisbursementStatus(disbursement.status)
    if status is DisbursementStatus.CANCELED:
        return disbursement
    if status not in CANCELABLE or disbursement.transfer_id != found.transfer_id:
        raise NotCancelable(
            kind,
            f"{kind} {disbursement.id} is {status}: only a pending {kind} can be canceled "
            "(its signing request may already be with the signer)",
        )
    disbursement.canceled_by = merchant_id
    if batch_id is not None:
        await outgoing.cancel_batch(session, batch_id, by=f"merchant {merchant_id}")
        if disbursement.status == DisbursementStatus.CANCELED.value:
            return disbursement  # the round's cancel brought it there (records.follow)
    await records.change_status(session, disbursement, DisbursementStatus.CANCELED, reason=None)
    return disbursement


class AlreadyApproved(InvalidState):
    code = "already_approved"


async def approve(
    session: AsyncSession, ctx: GatewayContext, disbursement_id: str, *, by: str
) -> Disbursement:
    """One admin's approval of a refund or payout over its merchant's limit; it can be
    planned once two different admins approved it."""
    disbursement = await session.scalar(
        select(Disbursement)
        .where(Disbursement.id == disbursement_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if disbursement is None:
        raise NotFound(f"No such refund or payout: {disbursement_id!r}", param="id")
    if not disbursement.requires_approval:
        raise InvalidState(
            f"{disbursement.id} is within its merchant's limit and needs no approval",
            param="id",
            code="approval_not_required",
        )
    if disbursement.status != DisbursementStatus.PENDING.value:
        raise InvalidState(
            f"{disbursement.id} is {disbursement.status}; only a pending one is approved",
            param="id",
        )
    approvals = list(disbursement.approvals or [])
    if any(a["by"] == by for a in approvals):
        raise AlreadyApproved(
            f"{by} already approved {disbursement.id}: the second approval must come from "
            "another admin",
            param="id",
        )
    if len(approvals) >= APPROVALS_NEEDED:
        return disbursement
    approvals.append({"by": by, "at": datetime.now(UTC).isoformat()})
    disbursement.approvals = approvals
    disbursement.version += 1
    disbursement.updated_at = datetime.now(UTC)
    await session.flush()
    return disbursement


def approved(disbursement: Disbursement) -> bool:
    return (
        not disbursement.requires_approval or len(disbursement.approvals or []) >= APPROVALS_NEEDED
    )
