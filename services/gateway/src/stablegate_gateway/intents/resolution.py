"""Resolving a `requires_action` intent: a person looked at it and decided.

`mark_paid` makes it `paid` (fulfil the order; the `exception` stays as the record of why
it needed a person), `void` makes it `canceled` (nothing will be fulfilled; any funds
received are returned outside the gateway). `void` ends in `canceled` rather than a
status of its own because it means the same thing to every consumer of the status list
(DESIGN.md §2): this intent will never be fulfilled; the kept `exception` and the
`resolution` field tell it apart from a cancel before any funds.

Every resolution is recorded with who (the API key, or the key and subject of the JWT
used) and why, in `payment_intent_resolutions`, once per intent; the row lock on the
intent and the table's primary key make a second resolution impossible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.errors import InvalidRequest, NotFound
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.core.lifecycle import Resolution, Resolve
from stablegate_gateway.intents import repository
from stablegate_gateway.intents.models import IntentResolution, PaymentIntent
from stablegate_gateway.intents.transitions import advance_intent
from stablegate_gateway.merchants.service import Principal

MAX_REASON = 1000


@dataclass(frozen=True)
class Decision:
    action: Resolution
    reason: str


def decision(action: str, reason: str) -> Decision:
    text = reason.strip()
    if not text:
        raise InvalidRequest("reason must say why.", param="reason", code="parameter_invalid")
    if len(text) > MAX_REASON:
        raise InvalidRequest(
            f"reason is at most {MAX_REASON} characters.", param="reason", code="parameter_invalid"
        )
    return Decision(Resolution(action), text)


async def resolve_intent(
    session: AsyncSession,
    ctx: GatewayContext,
    principal: Principal,
    intent_id: str,
    choice: Decision,
    *,
    now: datetime | None = None,
) -> PaymentIntent:
    """Apply a person's decision; InvalidState (`intent_not_resolvable`) unless the intent
    is `requires_action`."""
    intent = await repository.get(session, principal.merchant_id, intent_id, for_update=True)
    if intent is None:
        raise NotFound(f"No such payment_intent: {intent_id!r}", param="id")
    needed = intent.exception
    await advance_intent(
        session, ctx, intent, [Resolve(choice.action)], now=now or datetime.now(UTC)
    )
    session.add(
        IntentResolution(
            intent_id=intent.id,
            merchant_id=intent.merchant_id,
            action=choice.action.value,
            reason=choice.reason,
            exception=needed,
            actor_type=principal.via,
            api_key_id=principal.api_key_id,
            token_subject=principal.merchant_id if principal.via == "token" else None,
        )
    )
    await session.flush()
    return intent
