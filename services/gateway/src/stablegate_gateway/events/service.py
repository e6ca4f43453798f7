"""Recording a payment intent's change for everyone who must hear of it.

One call, in the caller's transaction (flush only): the bus event other services consume
(`intent.created` / `intent.updated`, the full snapshot, sequence = intent version), the
merchant event when the status changed (`payment_intent.<status>`, what webhooks and
`GET /v1/events` carry), and one webhook delivery per endpoint that wants it. Because all
of it commits with the change or not at all, no webhook is ever sent for a change that
rolled back, and none is lost for one that committed.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.bus import add_to_outbox
from stablegate_common.events import make_event
from stablegate_common.events.contracts import (
    IntentCreated,
    IntentSnapshot,
    IntentTransfer,
    IntentUpdated,
)
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.events.records import store_merchant_event
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.intents.presenter import present_intent
from stablegate_gateway.networks.models import NetworkHead
from stablegate_gateway.transfers.kinds import transfer_kind
from stablegate_gateway.transfers.models import Transfer
from stablegate_gateway.webhooks.service import enqueue_deliveries

PRODUCER = "gateway"
CREATED_TYPE = "payment_intent.created"


def merchant_event_type(status: str, *, created: bool) -> str:
    """`payment_intent.created` at creation, `payment_intent.<status>` on a status change."""
    return CREATED_TYPE if created else f"payment_intent.{status}"


async def record_intent_change(
    session: AsyncSession,
    ctx: GatewayContext,
    intent: PaymentIntent,
    transfers: Sequence[Transfer],
    *,
    previous_status: str | None,
    exception_changed: bool = False,
) -> None:
    """Write what the change means to others. The caller has set `intent.version`
    (1 at creation, +1 per change) and holds the intent row. The merchant hears of a new
    status, and of a new `exception` within the same status (`requires_action` for
    another reason, `paid` that turned `overpaid`)."""
    await _load_server_defaults(session, intent, transfers)
    created = previous_status is None
    add_to_outbox(
        session,
        make_event(
            _snapshot(intent, transfers, previous_status, created=created),
            producer=PRODUCER,
            subject=intent.id,
            sequence=intent.version,
        ),
    )
    if not created and previous_status == intent.status and not exception_changed:
        await session.flush()
        return
    # The head only serves to count the transfers' confirmations.
    head = await session.get(NetworkHead, intent.network) if transfers else None
    event = await store_merchant_event(
        session,
        merchant_id=intent.merchant_id,
        event_type=merchant_event_type(intent.status, created=created),
        object_id=intent.id,
        sequence=intent.version,
        obj=present_intent(intent, list(transfers), ctx, head),
    )
    await enqueue_deliveries(session, event)


def _snapshot(
    intent: PaymentIntent,
    transfers: Sequence[Transfer],
    previous_status: str | None,
    *,
    created: bool,
) -> IntentSnapshot:
    cls: type[IntentSnapshot] = IntentCreated if created else IntentUpdated
    return cls(
        intent_id=intent.id,
        merchant_id=intent.merchant_id,
        status=intent.status,  # validated against the Literal
        previous_status=previous_status,
        exception=intent.exception,
        network=intent.network,
        asset=intent.asset,
        token_contract=intent.token_contract,
        decimals=intent.decimals,
        deposit_address=intent.deposit_address,
        amount_base_units=intent.amount_base_units,
        amount_received_base_units=intent.amount_pending_base_units
        + intent.amount_confirmed_base_units,
        amount_confirmed_base_units=intent.amount_confirmed_base_units,
        reference=intent.reference,
        description=intent.description,
        metadata=dict(intent.metadata_ or {}),
        created_at=intent.created_at,
        expires_at=intent.expires_at,
        # Only what counts: the ledger books every listed transfer in the intent's asset,
        # so another token's (or network's) transfer must not be listed here.
        transfers=[
            IntentTransfer(
                transfer_id=t.id,
                tx_hash=t.tx_hash,
                log_index=t.log_index,
                block_number=t.block_number,
                from_address=t.from_address,
                amount_base_units=t.amount_base_units,
                status=t.status,
            )
            for t in transfers
            if transfer_kind(intent, t) == "payment"
        ],
    )


async def _load_server_defaults(
    session: AsyncSession, intent: PaymentIntent, transfers: Sequence[Transfer]
) -> None:
    """Columns filled by the database (`created_at`, …) are unloaded after a flush, and an
    async session cannot load them lazily: fetch them explicitly."""
    await session.flush()
    for obj in (intent, *transfers):
        unloaded = inspect(obj).unloaded
        if unloaded:
            await session.refresh(obj, attribute_names=sorted(unloaded))
