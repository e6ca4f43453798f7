"""Webhook endpoints (create, update, roll the secret, test, delete), the enqueueing of
deliveries, manual redelivery, and disabling an endpoint that failed for three days.

An endpoint's `whsec_` secret is generated here and handed back once, in the creation
or `roll_secret` response; afterwards it is only read to sign. After a roll the replaced
secret keeps signing beside the new one until `previous_secret_expires_at`, so a merchant
can deploy the new secret without losing a delivery. Deleting or disabling an endpoint
cancels its pending deliveries in the same transaction, so nothing more is sent to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.errors import InvalidRequest, InvalidState, NotFound
from stablegate_common.core.ids import new_id
from stablegate_common.db import flag_commit
from stablegate_gateway.api.serialization import iso_timestamp
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.events.models import MerchantEvent
from stablegate_gateway.events.records import store_merchant_event
from stablegate_gateway.events.schemas import EVENT_TYPES
from stablegate_gateway.webhooks import repository
from stablegate_gateway.webhooks.models import WebhookDelivery, WebhookEndpoint
from stablegate_gateway.webhooks.presenter import present_endpoint
from stablegate_gateway.webhooks.schemas import (
    ENDPOINT_DISABLED,
    ENDPOINT_TEST,
    SUBSCRIBABLE_ENDPOINT_EVENTS,
)
from stablegate_gateway.webhooks.signing import new_secret
from stablegate_gateway.webhooks.urls import check_webhook_url

MAX_ENABLED_EVENTS = 32
SUBSCRIBABLE = EVENT_TYPES | SUBSCRIBABLE_ENDPOINT_EVENTS
GAVE_UP_REASON = "every delivery failed from {since} until the last retry"

# The commit flag of a transaction that queued deliveries: the delivery worker wakes after
# those commits (`Database.after_commit(worker.kick, only_if=DELIVERIES_QUEUED)`).
DELIVERIES_QUEUED = "webhook_deliveries_queued"


def normalise_enabled_events(enabled_events: Sequence[str] | None) -> list[str]:
    """`["*"]` by default; otherwise known types only, without duplicates, order kept."""
    if enabled_events is None:
        return [repository.ALL_EVENTS]
    if not enabled_events:
        raise InvalidRequest(
            'enabled_events must list at least one event type, or ["*"] for all',
            param="enabled_events",
        )
    if len(enabled_events) > MAX_ENABLED_EVENTS:
        raise InvalidRequest(
            f"enabled_events lists at most {MAX_ENABLED_EVENTS} types", param="enabled_events"
        )
    unknown = [t for t in enabled_events if t != repository.ALL_EVENTS and t not in SUBSCRIBABLE]
    if unknown:
        raise InvalidRequest(
            f"unknown event type {unknown[0]!r} (known: *, {', '.join(sorted(SUBSCRIBABLE))})",
            param="enabled_events",
        )
    return list(dict.fromkeys(enabled_events))


async def create_endpoint(
    session: AsyncSession,
    ctx: GatewayContext,
    merchant_id: str,
    *,
    url: str,
    enabled_events: Sequence[str] | None = None,
    description: str | None = None,
) -> WebhookEndpoint:
    """Validate and store an endpoint; the returned object still carries its secret."""
    events = normalise_enabled_events(enabled_events)
    checked_url = await check_webhook_url(
        url, allow_private=ctx.settings.gateway.webhook_allow_private_urls
    )
    endpoint = WebhookEndpoint(
        id=new_id("we"),
        merchant_id=merchant_id,
        url=checked_url,
        secret=new_secret(),
        enabled_events=events,
        status="enabled",
        description=description,
        created_at=datetime.now(UTC),
        version=0,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get_endpoint(
    session: AsyncSession, merchant_id: str, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpoint:
    endpoint = await repository.get_live_endpoint(session, merchant_id, endpoint_id, lock=lock)
    if endpoint is None:
        raise NotFound(f"No such webhook_endpoint: {endpoint_id!r}", param="id")
    return endpoint


async def update_endpoint(
    session: AsyncSession,
    ctx: GatewayContext,
    merchant_id: str,
    endpoint_id: str,
    *,
    url: str | None = None,
    enabled_events: Sequence[str] | None = None,
    description: str | None = None,
    disabled: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given; validated in full before anything is written."""
    events = normalise_enabled_events(enabled_events) if enabled_events is not None else None
    checked_url = (
        await check_webhook_url(url, allow_private=ctx.settings.gateway.webhook_allow_private_urls)
        if url is not None
        else None
    )
    endpoint = await get_endpoint(session, merchant_id, endpoint_id, lock=True)
    if checked_url is not None:
        endpoint.url = checked_url
    if events is not None:
        endpoint.enabled_events = events
    if description is not None:
        endpoint.description = description
    if disabled is True and endpoint.status == "enabled":
        await _disable(session, endpoint, reason=None)
    elif disabled is False:
        endpoint.status = "enabled"
        endpoint.disabled_reason = None
    await session.flush()
    return endpoint


async def roll_secret(
    session: AsyncSession,
    ctx: GatewayContext,
    merchant_id: str,
    endpoint_id: str,
    *,
    expires_in: int | None = None,
    now: datetime | None = None,
) -> WebhookEndpoint:
    """A new secret; the current one keeps signing for `expires_in` seconds (default
    `GATEWAY_WEBHOOK_SECRET_OVERLAP_SECONDS`). Rolling again ends an earlier overlap."""
    config = ctx.settings.gateway
    overlap = config.webhook_secret_overlap_seconds if expires_in is None else expires_in
    if not 0 <= overlap <= config.webhook_secret_overlap_max_seconds:
        raise InvalidRequest(
            f"expires_in must be between 0 and {config.webhook_secret_overlap_max_seconds} "
            "seconds.",
            param="expires_in",
            code="parameter_invalid",
        )
    endpoint = await get_endpoint(session, merchant_id, endpoint_id, lock=True)
    now = now or datetime.now(UTC)
    if overlap > 0:
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + timedelta(seconds=overlap)
    else:
        endpoint.previous_secret = None
        endpoint.previous_secret_expires_at = None
    endpoint.secret = new_secret()
    await session.flush()
    return endpoint


def signing_secrets(
    secret: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The secrets that sign a delivery made at `now`: the current one, and the rolled one
    while its overlap lasts."""
    if previous is not None and previous_expires_at is not None and now < previous_expires_at:
        return [secret, previous]
    return [secret]


async def delete_endpoint(
    session: AsyncSession, merchant_id: str, endpoint_id: str
) -> WebhookEndpoint:
    """Soft-delete (the delivery log keeps its endpoint) and cancel pending deliveries."""
    endpoint = await get_endpoint(session, merchant_id, endpoint_id, lock=True)
    endpoint.deleted_at = datetime.now(UTC)
    endpoint.status = "disabled"
    await session.flush()
    await repository.cancel_pending_deliveries(session, endpoint.id)
    return endpoint


async def enqueue_deliveries(session: AsyncSession, event: MerchantEvent) -> int:
    """One pending delivery per endpoint subscribed to the event; due at once."""
    endpoint_ids = await repository.subscribed_endpoint_ids(session, event.merchant_id, event.type)
    for endpoint_id in endpoint_ids:
        session.add(_new_delivery(endpoint_id, event.id))
    if endpoint_ids:
        await session.flush()
        flag_commit(session, DELIVERIES_QUEUED)
    return len(endpoint_ids)


async def send_test_event(
    session: AsyncSession, merchant_id: str, endpoint_id: str
) -> tuple[WebhookDelivery, MerchantEvent]:
    """A `webhook_endpoint.test` event, delivered to this endpoint only (whatever its
    `enabled_events`), through the same queue, signing and retries as every event."""
    endpoint = await get_endpoint(session, merchant_id, endpoint_id, lock=True)
    if endpoint.status != "enabled":
        raise _disabled_error(endpoint)
    event = await _record_endpoint_event(session, endpoint, ENDPOINT_TEST)
    delivery = await _add_delivery(session, _new_delivery(endpoint.id, event.id))
    return delivery, event


async def get_delivery(
    session: AsyncSession, merchant_id: str, delivery_id: str
) -> tuple[WebhookDelivery, WebhookEndpoint]:
    found = await repository.get_delivery(session, merchant_id, delivery_id)
    if found is None:
        raise NotFound(f"No such webhook_delivery: {delivery_id!r}", param="id")
    return found


async def redeliver(session: AsyncSession, merchant_id: str, delivery_id: str) -> WebhookDelivery:
    """Send the delivery's event to its endpoint again, now, as a new delivery (with its
    own attempts and retries); the original stays in the log as it was."""
    original, endpoint = await get_delivery(session, merchant_id, delivery_id)
    if endpoint.status != "enabled":
        raise _disabled_error(endpoint)
    return await _add_delivery(
        session, _new_delivery(endpoint.id, original.event_id, redelivery_of=original.id)
    )


async def give_up(session: AsyncSession, endpoint_id: str, first_attempt_at: datetime) -> bool:
    """A delivery used its last attempt: disable its endpoint if nothing reached it since
    that delivery's first attempt (≈3 days of failures), announcing it with a
    `webhook_endpoint.disabled` event. True when it was disabled now."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None or endpoint.status != "enabled" or endpoint.deleted_at is not None:
        return False
    if await repository.delivered_since(session, endpoint_id, first_attempt_at):
        return False
    since = iso_timestamp(first_attempt_at)
    await _disable(session, endpoint, reason=GAVE_UP_REASON.format(since=since))
    return True


async def _disable(session: AsyncSession, endpoint: WebhookEndpoint, *, reason: str | None) -> None:
    endpoint.status = "disabled"
    endpoint.disabled_reason = reason
    await session.flush()
    await repository.cancel_pending_deliveries(session, endpoint.id, "endpoint disabled")
    if reason is not None:  # the gateway's decision: the merchant must hear of it
        event = await _record_endpoint_event(session, endpoint, ENDPOINT_DISABLED)
        await enqueue_deliveries(session, event)


async def _record_endpoint_event(
    session: AsyncSession, endpoint: WebhookEndpoint, event_type: str
) -> MerchantEvent:
    endpoint.version += 1
    return await store_merchant_event(
        session,
        merchant_id=endpoint.merchant_id,
        event_type=event_type,
        object_id=endpoint.id,
        sequence=endpoint.version,
        obj=present_endpoint(endpoint),
    )


async def _add_delivery(session: AsyncSession, delivery: WebhookDelivery) -> WebhookDelivery:
    session.add(delivery)
    await session.flush()
    flag_commit(session, DELIVERIES_QUEUED)
    # The database fills these (its clock is the worker's); an async session cannot load
    # them lazily when the API presents the delivery.
    await session.refresh(delivery, ["created_at", "next_attempt_at"])
    return delivery


def _new_delivery(
    endpoint_id: str, event_id: str, *, redelivery_of: str | None = None
) -> WebhookDelivery:
    return WebhookDelivery(
        id=new_id("whd"),
        endpoint_id=endpoint_id,
        event_id=event_id,
        status="pending",
        attempts=0,
        redelivery_of=redelivery_of,
    )


def _disabled_error(endpoint: WebhookEndpoint) -> InvalidState:
    return InvalidState(
        f"Webhook endpoint {endpoint.id} is disabled"
        + (f" ({endpoint.disabled_reason})" if endpoint.disabled_reason else "")
        + '; enable it first with `POST /v1/webhook_endpoints/{id}` `{"disabled": false}`.',
        param="id",
        code="endpoint_disabled",
    )
