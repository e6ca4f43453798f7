"""What the hosted checkout reads: one intent by its id alone (the checkout link is the
customer's only credential), its merchant's display name, its transfers and the head of
its network. Read-only: the checkout never writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_gateway.intents import repository as intents
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.merchants.models import Merchant
from stablegate_gateway.networks import repository as networks
from stablegate_gateway.networks.models import NetworkHead
from stablegate_gateway.transfers.models import Transfer


@dataclass(frozen=True)
class CheckoutRecord:
    intent: PaymentIntent
    merchant_name: str
    transfers: Sequence[Transfer]
    head: NetworkHead | None


async def load(session: AsyncSession, intent_id: str) -> CheckoutRecord | None:
    row = (
        await session.execute(
            select(PaymentIntent, Merchant.name)
            .join(Merchant, Merchant.id == PaymentIntent.merchant_id)
            .where(PaymentIntent.id == intent_id)
        )
    ).one_or_none()
    if row is None:
        return None
    intent, merchant_name = row
    transfers = await intents.transfers_of(session, [intent.id])
    head = await networks.head(session, intent.network)
    return CheckoutRecord(intent, merchant_name, transfers.get(intent.id, []), head)
