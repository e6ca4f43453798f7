"""Unsolicited transfers: a registered token sent to an address no intent held when it
was sent (an address never handed out, one released back to the pool, or a payment
made before the intent existed). The transfer row is kept with no intent, never dropped,
and announced once, when it is final, as a `transfer.unsolicited` event (webhook and
`GET /v1/events`).

Who hears of it: the merchant whose intent held the address last, on either network of
the address's family (the money is most likely that merchant's customer's). An address
that no intent ever held has no merchant to tell; it is an operator matter: kept in
`transfers`, logged, and counted in
`stablegate_gateway_unsolicited_transfers_total{reason="no_intent"}`. Zero-value
transfers (address poisoning) are kept but never announced.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.addresses import display_address
from stablegate_common.core.assets import Network
from stablegate_common.core.money import format_amount
from stablegate_gateway.api.serialization import iso_timestamp
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.events.models import MerchantEvent
from stablegate_gateway.events.records import store_merchant_event
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.transfers.models import Transfer
from stablegate_gateway.webhooks.service import enqueue_deliveries

log = logging.getLogger(__name__)

EVENT_TYPE = "transfer.unsolicited"


async def announce_unsolicited(
    session: AsyncSession, ctx: GatewayContext, row: Transfer, network: Network, *, now: datetime
) -> MerchantEvent | None:
    """Announce a final unsolicited transfer to the last merchant at its address, once."""
    if row.status != "confirmed" or row.announced_at is not None or row.amount_base_units <= 0:
        return None
    row.announced_at = now  # once, whether or not anyone is told
    holder = await last_holder(session, ctx, network, row.to_address)
    if holder is None:
        log.warning(
            "unsolicited transfer to an address no merchant ever held",
            extra={"network": row.network, "tx_hash": row.tx_hash, "to_address": row.to_address},
        )
        await session.flush()
        return None
    event = await store_merchant_event(
        session,
        merchant_id=holder.merchant_id,
        event_type=EVENT_TYPE,
        object_id=row.id,
        sequence=row.chain_sequence,
        obj=present_unsolicited(row, network, last_intent_id=holder.id),
    )
    await enqueue_deliveries(session, event)
    return event


async def last_holder(
    session: AsyncSession, ctx: GatewayContext, network: Network, address: str
) -> PaymentIntent | None:
    """The most recent intent given `address`, on any network of its family."""
    same_family = [n.name for n in ctx.registry if n.family == network.family]
    return await session.scalar(
        select(PaymentIntent)
        .where(PaymentIntent.deposit_address == address, PaymentIntent.network.in_(same_family))
        .order_by(PaymentIntent.created_at.desc())
        .limit(1)
    )


def present_unsolicited(
    row: Transfer, network: Network, *, last_intent_id: str | None
) -> dict[str, Any]:
    """The `transfer` object of a `transfer.unsolicited` event.

    `payment_intent` names the intent that held the address last (a hint for finding the
    customer, not an attribution: the transfer counts for no intent).
    """
    asset = network.asset_by_contract(row.token_contract)
    decimals = asset.decimals if asset is not None else 0
    return {
        "id": row.id,
        "object": "transfer",
        "network": row.network,
        "asset": asset.symbol if asset is not None else None,
        "token_contract": display_address(network.family, row.token_contract),
        "tx_hash": row.tx_hash,
        "log_index": row.log_index,
        "block_number": row.block_number,
        "from_address": _display(network, row.from_address),
        "to_address": display_address(network.family, row.to_address),
        "amount": format_amount(row.amount_base_units, decimals),
        "amount_base_units": str(row.amount_base_units),
        "confirmations": row.confirmations,
        "status": row.status,
        "payment_intent": last_intent_id,
        "created_at": iso_timestamp(row.detected_at),
    }


def _display(network: Network, address: str) -> str:
    try:
        return display_address(network.family, address)
    except ValueError:
        return address  # the sender is shown as reported when it is in an odd form
