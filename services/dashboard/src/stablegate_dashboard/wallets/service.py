"""The wallet views: the deposit-address pool per network family, the addresses in use
with their last activity, and merchant balances.

The pool state of an address is derived from the intents that held it, since the gateway
publishes no event when it releases one: `allocated` while its newest intent is still
open, `cooling` for DASHBOARD_ADDRESS_COOLDOWN_SECONDS after that intent's last change
(the gateway's GATEWAY_ADDRESS_COOLDOWN_SECONDS, mirrored), `free` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Subquery, case, func, literal, select
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.assets import AssetRegistry
from stablegate_common.events import Event
from stablegate_common.events.contracts import AddressesProvisioned, BalanceUpdated
from stablegate_dashboard.db import upsert_if_newer
from stablegate_dashboard.intents.models import IntentView
from stablegate_dashboard.transfers.models import TransferView
from stablegate_dashboard.wallets.models import BalanceView, DepositAddressView

OPEN_STATUSES = ("awaiting_payment", "confirming", "partially_paid")
_INSERT_CHUNK = 1000


async def apply_provisioned(
    session: AsyncSession, event: Event, batch: AddressesProvisioned
) -> None:
    rows = [
        {
            "family": batch.family,
            "address": address,
            "derivation_index": batch.first_index + offset,
            "provisioned_at": event.occurred_at,
        }
        for offset, address in enumerate(batch.addresses)
    ]
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        await session.execute(insert(DepositAddressView).values(chunk).on_conflict_do_nothing())


async def apply_balance(session: AsyncSession, event: Event, balance: BalanceUpdated) -> bool:
    """Keep the newest balance per (merchant, network, asset); False for a late older one."""
    values = {
        "merchant_id": balance.merchant_id,
        "network": balance.network,
        "asset": balance.asset,
        "decimals": balance.decimals,
        "available_base_units": balance.available_base_units,
        "updated_at": event.occurred_at,
        "sequence": event.sequence,
    }
    return await upsert_if_newer(session, BalanceView, values, ("merchant_id", "network", "asset"))


@dataclass(frozen=True)
class Pool:
    family: str
    networks: list[str]
    total: int
    free: int
    allocated: int
    cooling: int


def _latest_intents() -> Subquery:
    """The newest intent of every deposit address."""
    return (
        select(
            IntentView.deposit_address,
            IntentView.id,
            IntentView.status,
            IntentView.network,
            IntentView.asset,
            IntentView.decimals,
            IntentView.amount_confirmed_base_units,
            IntentView.updated_at,
        )
        .ext(distinct_on(IntentView.deposit_address))
        .order_by(IntentView.deposit_address, IntentView.created_at.desc())
        .subquery("latest")
    )


def _state(latest: Subquery, cooling_since: datetime) -> ColumnElement[str]:
    return case(
        (latest.c.status.in_(OPEN_STATUSES), literal("allocated")),
        (latest.c.updated_at > cooling_since, literal("cooling")),
        else_=literal("free"),
    )


async def pools(
    session: AsyncSession, registry: AssetRegistry, *, cooldown_seconds: int, now: datetime
) -> list[Pool]:
    latest = _latest_intents()
    state = _state(latest, now - timedelta(seconds=cooldown_seconds)).label("state")
    rows = await session.execute(
        select(DepositAddressView.family, state, func.count())
        .outerjoin(latest, latest.c.deposit_address == DepositAddressView.address)
        .group_by(DepositAddressView.family, state)
    )
    counts: dict[str, dict[str, int]] = {}
    for family, name, count in rows:
        counts.setdefault(family, {})[name] = int(count)
    families = sorted({*counts, *(n.family for n in registry)})
    return [
        Pool(
            family=family,
            networks=[n.name for n in registry if n.family == family],
            total=sum(counts.get(family, {}).values()),
            free=counts.get(family, {}).get("free", 0),
            allocated=counts.get(family, {}).get("allocated", 0),
            cooling=counts.get(family, {}).get("cooling", 0),
        )
        for family in families
    ]


@dataclass(frozen=True)
class AddressActivity:
    address: str
    state: str
    intent_id: str
    intent_status: str
    network: str
    asset: str
    decimals: int
    confirmed_base_units: int
    transfers: int
    last_activity: datetime


async def recent_addresses(
    session: AsyncSession, *, cooldown_seconds: int, now: datetime, limit: int = 50
) -> list[AddressActivity]:
    """Addresses that have held an intent, the most recently active first."""
    latest = _latest_intents()
    seen = (
        select(
            TransferView.to_address,
            func.count().label("transfers"),
            func.max(TransferView.block_timestamp).label("last_transfer"),
        )
        .group_by(TransferView.to_address)
        .subquery("seen")
    )
    last = func.greatest(latest.c.updated_at, seen.c.last_transfer).label("last_activity")
    state = _state(latest, now - timedelta(seconds=cooldown_seconds))
    rows = await session.execute(
        select(latest, state, func.coalesce(seen.c.transfers, 0), last)
        .outerjoin(seen, seen.c.to_address == latest.c.deposit_address)
        .order_by(last.desc())
        .limit(limit)
    )
    return [_activity(row) for row in rows]


def _activity(row: Any) -> AddressActivity:
    (address, intent_id, status, network, asset, decimals, confirmed, _, state, n, last) = row
    return AddressActivity(
        address, state, intent_id, status, network, asset, decimals, int(confirmed), int(n), last
    )


@dataclass(frozen=True)
class BalanceTotal:
    network: str
    asset: str
    decimals: int
    available_base_units: int
    merchants: int
    updated_at: datetime


async def balance_totals(session: AsyncSession) -> list[BalanceTotal]:
    rows = await session.execute(
        select(
            BalanceView.network,
            BalanceView.asset,
            BalanceView.decimals,
            func.sum(BalanceView.available_base_units),
            func.count(),
            func.max(BalanceView.updated_at),
        )
        .group_by(BalanceView.network, BalanceView.asset, BalanceView.decimals)
        .order_by(BalanceView.network, BalanceView.asset)
    )
    return [
        BalanceTotal(network, asset, decimals, int(total), int(count), updated)
        for network, asset, decimals, total, count, updated in rows
    ]


async def balances(session: AsyncSession, *, limit: int = 200) -> Sequence[BalanceView]:
    return (
        await session.scalars(
            select(BalanceView)
            .order_by(BalanceView.available_base_units.desc(), BalanceView.merchant_id)
            .limit(limit)
        )
    ).all()
