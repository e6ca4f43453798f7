"""JSON request bodies, parsed by us rather than by FastAPI.

Owning the parse lets the API say exactly what is wrong: malformed JSON is `invalid_json`,
an empty body counts as `{}` (so the error names the first missing parameter, as Stripe
does), and numbers are read as `Decimal`, so no float is ever created from a request.
The model still documents the body in OpenAPI through `openapi_body`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from stablegate_common.core.errors import InvalidRequest
from stablegate_gateway.api.errors import from_validation_errors

M = TypeVar("M", bound=BaseModel)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            f"The request body is not valid JSON: {exc}.", code="invalid_json"
        ) from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    where = _nul_character_at(data)
    if where is not None:
        # PostgreSQL text cannot hold U+0000; refuse it here rather than fail on storing.
        raise InvalidRequest(
            f"Invalid {where}: strings must not contain the NUL character (\\u0000).",
            param=where,
            code="parameter_invalid",
        )
    return data


def _nul_character_at(value: Any, path: str = "") -> str | None:
    """The parameter (Stripe spelling, `metadata[key]`) holding a NUL character, if any."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    entries: list[tuple[Any, Any]]
    if isinstance(value, dict):
        entries = list(value.items())
    elif isinstance(value, list):
        entries = list(enumerate(value))
    else:
        return None
    for key, item in entries:
        if "\x00" in str(key):
            return path or "body"
        found = _nul_character_at(item, f"{path}[{key}]" if path else str(key))
        if found is not None:
            return found
    return None


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency that parses the body as `model`, raising domain errors."""

    async def parse(request: Request) -> M:
        data = parse_json_object(await request.body())
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise from_validation_errors(exc.errors()) from exc

    return parse


def openapi_body(
    model: type[BaseModel], example: dict[str, Any], *, required: bool = True
) -> dict[str, Any]:
    """`openapi_extra` documenting a body that `json_body` parses."""
    return {
        "requestBody": {
            "required": required,
            "content": {
                "application/json": {
                    "schema": model.model_json_schema(ref_template="#/components/schemas/{model}"),
                    "example": example,
                }
            },
        }
    }
