"""Applying intent snapshots to the read model, and reading it for the API."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.errors import NotFound
from stablegate_common.events import Event
from stablegate_common.events.contracts import IntentSnapshot
from stablegate_dashboard.intents import repository
from stablegate_dashboard.intents.models import IntentEventView, IntentView
from stablegate_dashboard.transfers.models import TransferView
from stablegate_dashboard.transfers.service import transfer_reports

log = logging.getLogger(__name__)


async def apply_snapshot(session: AsyncSession, event: Event, snapshot: IntentSnapshot) -> bool:
    """Record the snapshot on the timeline, and keep it as the intent's row when it is the
    newest; False when an older one arrived late (the timeline still gets it)."""
    await repository.record_event(session, _timeline_entry(event, snapshot))
    applied = await repository.store_if_newer(session, _row(event, snapshot))
    if not applied:
        log.info(
            "older intent snapshot ignored",
            extra={"intent": snapshot.intent_id, "sequence": event.sequence},
        )
        return False
    await repository.claim_transfers(
        session,
        [
            {
                "network": snapshot.network,
                "tx_hash": t.tx_hash,
                "log_index": t.log_index,
                "intent_id": snapshot.intent_id,
                "transfer_id": t.transfer_id,
            }
            for t in snapshot.transfers
        ],
    )
    return True


def _row(event: Event, snapshot: IntentSnapshot) -> dict[str, Any]:
    return {
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
        "description": snapshot.description,
        "metadata": dict(snapshot.metadata),
        "transfers": [t.model_dump(mode="json") for t in snapshot.transfers],
        "created_at": snapshot.created_at,
        "expires_at": snapshot.expires_at,
        "paid_at": event.occurred_at if snapshot.status == "paid" else None,
        "updated_at": event.occurred_at,
        "sequence": event.sequence,
    }


def _timeline_entry(event: Event, snapshot: IntentSnapshot) -> dict[str, Any]:
    return {
        "intent_id": snapshot.intent_id,
        "sequence": event.sequence,
        "event_id": event.id,
        "event_type": event.type,
        "status": snapshot.status,
        "previous_status": snapshot.previous_status,
        "exception": snapshot.exception,
        "amount_received_base_units": snapshot.amount_received_base_units,
        "amount_confirmed_base_units": snapshot.amount_confirmed_base_units,
        "transfer_count": len(snapshot.transfers),
        "occurred_at": event.occurred_at,
    }


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


@dataclass(frozen=True)
class IntentDetail:
    intent: IntentView
    timeline: list[IntentEventView]
    # The snapshot's transfers, each with the watcher's newest report when there is one.
    transfers: list[tuple[dict[str, Any], TransferView | None]]


async def intent_detail(session: AsyncSession, intent_id: str) -> IntentDetail:
    intent = await get_intent(session, intent_id)
    reports = await transfer_reports(
        session, intent.network, [(t["tx_hash"], t["log_index"]) for t in intent.transfers]
    )
    return IntentDetail(
        intent=intent,
        timeline=list(await repository.timeline(session, intent_id)),
        transfers=[(t, reports.get((t["tx_hash"], t["log_index"]))) for t in intent.transfers],
    )
