"""Consumers of `address.provisioned` (the pool) and `balance.updated` (balances)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.events import Event, parse_payload
from stablegate_common.events.contracts import AddressesProvisioned, BalanceUpdated
from stablegate_dashboard.wallets import service

ADDRESSES_CONSUMER = "addresses"
ADDRESSES_ROUTING_KEYS = ("address.*",)
BALANCES_CONSUMER = "balances"
BALANCES_ROUTING_KEYS = ("balance.*",)


async def on_address_event(session: AsyncSession, event: Event) -> None:
    if event.type != AddressesProvisioned.event_type:
        return
    await service.apply_provisioned(session, event, parse_payload(event, AddressesProvisioned))


async def on_balance_event(session: AsyncSession, event: Event) -> None:
    if event.type != BalanceUpdated.event_type:
        return
    await service.apply_balance(session, event, parse_payload(event, BalanceUpdated))
