"""Applying intent snapshots to the read model, and reading it for the API."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.errors import NotFound
from stablegate_common.events import Event
from stablegate_common.events.contracts import IntentSnapshot
from stablegate_dashboard.intents import repository
from stablegate_dashboard.intents.models import IntentView

log = logging.getLogger(__name__)


async def apply_snapshot(session: AsyncSession, event: Event, snapshot: IntentSnapshot) -> bool:
    """Keep the newest snapshot of the intent; False when an older one arrived late."""
    applied = await repository.upsert_if_newer(
        session,
        {
            "id": snapshot.intent_id,
            "merchant_id": snapshot.merchant_id,
            "status": snapshot.status,
            "exception": snapshot.exception,
            "network": snapshot.network,
            "asset": snapshot.asset,
            "token_contract": snapshot.token_contract,
            "decimals": snapshot.decimals,
            "amount_base_units": snapshot.amount_base_units,
            "amount_received_base_units": snapshot.amount_received_base_units,
            "amount_confirmed_base_units": snapshot.amount_confirmed_base_units,
            "deposit_address": snapshot.deposit_address,
            "reference": snapshot.reference,
            "transfers": [t.model_dump(mode="json") for t in snapshot.transfers],
            "created_at": snapshot.created_at,
            "expires_at": snapshot.expires_at,
            "updated_at": event.occurred_at,
            "sequence": event.sequence,
        },
    )
    if not applied:
        log.info(
            "older intent snapshot ignored",
            extra={"intent": snapshot.intent_id, "sequence": event.sequence},
        )
    return applied


async def get_intent(session: AsyncSession, intent_id: str) -> IntentView:
    intent = await repository.get(session, intent_id)
    if intent is None:
        raise NotFound(f"no payment intent {intent_id!r}", param="id")
    return intent


@dataclass(frozen=True)
class Page:
    items: list[IntentView]
    has_more: bool


async def list_intents(
    session: AsyncSession, *, status: str | None, starting_after: str | None, limit: int
) -> Page:
    rows = list(
        await repository.list_page(
            session, status=status, starting_after=starting_after, limit=limit
        )
    )
    return Page(items=rows[:limit], has_more=len(rows) > limit)
