"""The message bus: RabbitMQ topology and confirmed publishing (connection), the
transactional outbox and its relay (outbox), and inbox dedupe for consumers (inbox).

Producers: `add_to_outbox(session, event)` in the state-changing transaction, and one
`OutboxRelay(db, bus)` loop per service, woken by the commits that wrote to the outbox
(`db.after_commit(relay.kick, only_if=OUTBOX_WRITTEN)`). Consumers:
`bus.consume(name, routing_keys, idempotent(db, name, handler))`.
"""

from stablegate_common.bus.connection import Bus, BusError, Handler, OutgoingMessage
from stablegate_common.bus.inbox import InboxMessage, SessionHandler, idempotent, prune_inbox
from stablegate_common.bus.outbox import (
    OUTBOX_WRITTEN,
    OutboxMessage,
    OutboxRelay,
    add_many_to_outbox,
    add_to_outbox,
)

__all__ = [
    "OUTBOX_WRITTEN",
    "Bus",
    "BusError",
    "Handler",
    "InboxMessage",
    "OutboxMessage",
    "OutboxRelay",
    "OutgoingMessage",
    "SessionHandler",
    "add_many_to_outbox",
    "add_to_outbox",
    "idempotent",
    "prune_inbox",
]
