"""How values other than money are written in API responses (money: `core.money`)."""

from __future__ import annotations

from datetime import UTC, datetime

from stablegate_common.core.errors import InvalidRequest


def iso_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, microseconds kept so the value works as a filter bound."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 (a bare date or a naive time counts as UTC) or unix seconds.

    Raises ValueError; the caller names the parameter.
    """
    stripped = text.strip()
    if stripped.isdigit():
        return datetime.fromtimestamp(int(stripped), UTC)
    value = datetime.fromisoformat(stripped)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def timestamp_param(name: str, value: str | None) -> datetime | None:
    """A `created_gte`-style query parameter, or an error naming it."""
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError, OSError):
        raise InvalidRequest(
            f"Invalid {name}: expected ISO 8601 or unix seconds, got {value!r}.",
            param=name,
            code="parameter_invalid",
        ) from None
