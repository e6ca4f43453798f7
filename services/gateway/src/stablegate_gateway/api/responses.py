"""OpenAPI `responses` entries with examples, for routes to document what they return."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from stablegate_gateway.api.errors import ErrorResponse

_REQUEST_ID_EXAMPLE = "req_01JDQ0000000000000000000000"


def ok(model: type[BaseModel], example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """A 200 documented by `model` with `example` as its example body."""
    return {200: {"model": model, "content": {"application/json": {"example": example}}}}


def conflict(description: str, code: str, message: str) -> dict[int | str, dict[str, Any]]:
    """A 409 for a state conflict of the operation (the idempotency 409s share the status)."""
    example = {
        "error": {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": "id",
            "request_id": _REQUEST_ID_EXAMPLE,
        }
    }
    return {
        409: {
            "model": ErrorResponse,
            "description": description,
            "content": {"application/json": {"example": example}},
        }
    }
