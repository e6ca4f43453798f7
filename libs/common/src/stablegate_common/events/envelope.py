"""The envelope every bus message travels in.

`type` is the routing key (`transfer.confirmed`), `version` the payload schema version,
`subject` the object the event is about and `sequence` its per-object order: consumers
apply an event only when its sequence is newer than what they hold, because queues do
not order events across producers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from stablegate_common.core.ids import new_id


def _int_from_json(value: Any) -> Any:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, float):
        raise ValueError("amounts must not be floats")
    return value


# Base units travel as decimal strings (JSON numbers lose precision in most consumers).
BaseUnitsField = Annotated[
    int, BeforeValidator(_int_from_json), PlainSerializer(str, return_type=str), Field(ge=0)
]


class EventPayload(BaseModel):
    """Base of every payload; subclasses set the routing key and schema version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    event_version: ClassVar[int] = 1


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    version: int
    occurred_at: datetime
    producer: str
    subject: str
    sequence: int = Field(ge=0)
    data: dict[str, Any]


P = TypeVar("P", bound=EventPayload)

REGISTRY: dict[str, type[EventPayload]] = {}


def register(cls: type[P]) -> type[P]:
    REGISTRY[cls.event_type] = cls
    return cls


def make_event(
    payload: EventPayload,
    *,
    producer: str,
    subject: str,
    sequence: int,
    occurred_at: datetime | None = None,
) -> Event:
    return Event(
        id=new_id("evt"),
        type=payload.event_type,
        version=payload.event_version,
        occurred_at=occurred_at or datetime.now(UTC),
        producer=producer,
        subject=subject,
        sequence=sequence,
        data=payload.model_dump(mode="json"),
    )


def parse_payload(event: Event, expected: type[P]) -> P:
    if event.type != expected.event_type:
        raise ValueError(f"event {event.id} is {event.type}, not {expected.event_type}")
    if event.version > expected.event_version:
        raise ValueError(f"event {event.id} has version {event.version}, newer than understood")
    return expected.model_validate(event.data)
