"""Cursor pagination, Stripe style, for every list endpoint.

Objects are listed newest first by id (ids are time-sortable ULIDs). `starting_after`
pages towards older objects, `ending_before` towards newer ones; `has_more` says
whether another page exists in the direction of travel. One extra row is fetched to
know it, so a page costs one indexed query.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from stablegate_common.core.errors import InvalidRequest

T = TypeVar("T")

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
_CURSOR = re.compile(r"^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$")


@dataclass(frozen=True)
class PageParams:
    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None
    ending_before: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool


async def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="objects per page, 1 to 100")
    ] = DEFAULT_LIMIT,
    starting_after: Annotated[
        str | None,
        Query(description="an object id: list the objects that come after it (older)"),
    ] = None,
    ending_before: Annotated[
        str | None,
        Query(description="an object id: list the objects that come before it (newer)"),
    ] = None,
) -> PageParams:
    if starting_after is not None and ending_before is not None:
        raise InvalidRequest(
            "starting_after and ending_before cannot be used together.",
            param="ending_before",
            code="parameters_exclusive",
        )
    for name, value in (("starting_after", starting_after), ("ending_before", ending_before)):
        if value is not None and not _CURSOR.match(value):
            raise InvalidRequest(
                f"Invalid {name}: {value!r} is not an object id.",
                param=name,
                code="parameter_invalid",
            )
    return PageParams(limit, starting_after, ending_before)


async def paginate(
    session: AsyncSession,
    query: Select[T],
    id_column: InstrumentedAttribute[str],
    page: PageParams,
) -> Page[T]:
    """Run `query` (already filtered) for one page, newest first."""
    if page.ending_before is not None:
        # Walk upwards from the cursor, then flip, so the page sits right before it.
        rows = await session.scalars(
            query.where(id_column > page.ending_before)
            .order_by(id_column.asc())
            .limit(page.limit + 1)
        )
        items = list(rows)
        has_more = len(items) > page.limit
        return Page(list(reversed(items[: page.limit])), has_more)
    if page.starting_after is not None:
        query = query.where(id_column < page.starting_after)
    rows = await session.scalars(query.order_by(id_column.desc()).limit(page.limit + 1))
    items = list(rows)
    return Page(items[: page.limit], len(items) > page.limit)


def list_object(data: Sequence[dict[str, Any]], *, has_more: bool, url: str) -> dict[str, Any]:
    return {"object": "list", "data": list(data), "has_more": has_more, "url": url}
