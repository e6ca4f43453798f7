"""Versioned event contracts carried on the bus (see contracts.py)."""

from stablegate_common.events.envelope import Event, EventPayload, make_event, parse_payload

__all__ = ["Event", "EventPayload", "make_event", "parse_payload"]
