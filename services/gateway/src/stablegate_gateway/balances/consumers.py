"""`balance.updated` from the reconciler: keep the merchant balances `GET /v1/balances`
shows. Events about one balance can arrive out of order, so only a newer sequence wins."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.events import Event, parse_payload
from stablegate_common.events.contracts import BalanceUpdated
from stablegate_gateway.balances import repository

log = logging.getLogger(__name__)

CONSUMER = "balances"
ROUTING_KEYS = ("balance.updated",)


async def on_balance_updated(session: AsyncSession, event: Event) -> None:
    balance = parse_payload(event, BalanceUpdated)
    applied = await repository.save_if_newer(
        session,
        merchant_id=balance.merchant_id,
        network=balance.network,
        asset=balance.asset.upper(),
        decimals=balance.decimals,
        available_base_units=balance.available_base_units,
        reserved_base_units=balance.reserved_base_units,
        sequence=event.sequence,
    )
    if not applied:
        log.info(
            "older balance update ignored",
            extra={"subject": event.subject, "sequence": event.sequence},
        )
