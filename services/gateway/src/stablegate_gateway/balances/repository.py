"""The merchant balance read model, fed by the reconciler's `balance.updated`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_gateway.balances.models import Balance


async def for_merchant(session: AsyncSession, merchant_id: str) -> Sequence[Balance]:
    rows = await session.scalars(
        select(Balance)
        .where(Balance.merchant_id == merchant_id)
        .order_by(Balance.network, Balance.asset)
    )
    return rows.all()


async def save_if_newer(
    session: AsyncSession,
    *,
    merchant_id: str,
    network: str,
    asset: str,
    decimals: int,
    available_base_units: int,
    reserved_base_units: int = 0,
    sequence: int,
) -> bool:
    """Upsert the balance unless a newer sequence is stored; return whether it applied."""
    stmt = insert(Balance).values(
        merchant_id=merchant_id,
        network=network,
        asset=asset,
        decimals=decimals,
        available_base_units=available_base_units,
        reserved_base_units=reserved_base_units,
        sequence=sequence,
    )
    excluded = stmt.excluded
    upsert = stmt.on_conflict_do_update(
        index_elements=[Balance.merchant_id, Balance.network, Balance.asset],
        set_={
            "decimals": excluded.decimals,
            "available_base_units": excluded.available_base_units,
            "reserved_base_units": excluded.reserved_base_units,
            "sequence": excluded.sequence,
            "updated_at": func.now(),
        },
        where=Balance.sequence < excluded.sequence,
    ).returning(Balance.merchant_id)
    return (await session.scalar(upsert)) is not None
