"""Read-only JSON over the intent read model: `GET /api/intents/{id}` and
`GET /api/intents?status=&limit=&starting_after=`, for signed-in ops users (the session
cookie); without one the answer is 401.
"""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Query

from stablegate_common.core.errors import InvalidRequest
from stablegate_common.db import Database
from stablegate_common.events.contracts import IntentStatus
from stablegate_dashboard.intents import service
from stablegate_dashboard.intents.schemas import IntentList, IntentOut
from stablegate_dashboard.web.session import current_principal

STATUSES = frozenset(get_args(IntentStatus))


def router(db: Database) -> APIRouter:
    api = APIRouter(
        prefix="/api/intents", tags=["intents"], dependencies=[Depends(current_principal)]
    )

    @api.get("/{intent_id}")
    async def get_intent(intent_id: str) -> IntentOut:
        async with db.sessions() as session:
            return IntentOut.of(await service.get_intent(session, intent_id))

    @api.get("")
    async def list_intents(
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        starting_after: str | None = None,
    ) -> IntentList:
        if status is not None and status not in STATUSES:
            raise InvalidRequest(
                f"status must be one of: {', '.join(sorted(STATUSES))}", param="status"
            )
        async with db.sessions() as session:
            page = await service.list_intents(
                session, status=status, starting_after=starting_after, limit=limit
            )
        return IntentList(data=[IntentOut.of(row) for row in page.items], has_more=page.has_more)

    return api
