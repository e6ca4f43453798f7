"""Queries of the deposit-address pool. Row locks and the pool's advisory lock live here;
the rules for using them live in `addresses.service`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.ids import new_id
from stablegate_gateway.addresses.models import DepositAddress


async def take_free(
    session: AsyncSession, family: str, *, intent_id: str, network: str, now: datetime
) -> DepositAddress | None:
    """Allocate the least recently used free address of `family` to `intent_id` in one
    statement (an UPDATE of the row a `FOR UPDATE SKIP LOCKED` subquery picks), or None if
    none is free. The row stays locked until the caller's transaction ends.

    Never-used addresses go first (lowest index first), then the one released longest
    ago: a late payment to a just-released address is then unlikely to meet a new holder
    (attribution refuses it anyway, `transfers.service.attribute`). The partial index
    `ix_deposit_addresses_free` is in this order.
    """
    free = (
        select(DepositAddress.id)
        .where(DepositAddress.family == family, DepositAddress.status == "free")
        .order_by(DepositAddress.released_at.asc().nulls_first(), DepositAddress.derivation_index)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return await session.scalar(
        update(DepositAddress)
        .where(DepositAddress.id == free)
        .values(
            status="allocated",
            intent_id=intent_id,
            network=network,
            allocated_at=now,
            cooling_until=None,
        )
        .returning(DepositAddress),
        execution_options={"synchronize_session": False},
    )


async def lock_pool(session: AsyncSession, schema: str, family: str) -> None:
    """Serialise derivation of new addresses of `family` until the transaction ends.

    Keyed by schema as well, so services (or tests) in other schemas do not contend.
    """
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
        {"key": f"{schema}:address-pool:{family}"},
    )


async def count_free(session: AsyncSession, family: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(DepositAddress)
        .where(DepositAddress.family == family, DepositAddress.status == "free")
    )
    return int(count or 0)


async def next_index(session: AsyncSession, family: str) -> int:
    highest = await session.scalar(
        select(func.max(DepositAddress.derivation_index)).where(DepositAddress.family == family)
    )
    return 0 if highest is None else int(highest) + 1


async def insert_derived(
    session: AsyncSession, family: str, first_index: int, addresses: Sequence[str]
) -> None:
    await session.execute(
        insert(DepositAddress),
        [
            {
                "id": new_id("addr"),
                "family": family,
                "derivation_index": first_index + offset,
                "address": address,
                "status": "free",
            }
            for offset, address in enumerate(addresses)
        ],
    )
