"""The error envelope `{"error": {type, code, message, param, request_id}}` and the one
table that maps domain errors to HTTP statuses.

Services raise `stablegate_common.core.errors` classes, which know nothing of HTTP; this
module turns them, FastAPI's validation errors and Starlette's routing errors into the
envelope. Unexpected exceptions become a bare `api_error` in `api.middleware`, so nothing
internal ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, Field
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from stablegate_common.core.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
)
from stablegate_common.logging import request_id_var
from stablegate_gateway.idempotency.service import IdempotencyError
from stablegate_gateway.ratelimit.service import RateLimited

log = logging.getLogger(__name__)

ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "idempotency_error",
    "rate_limit_error",
    "api_error",
]

# Looked up along the exception's MRO, so a subclass (InvalidAmount, InvalidState) takes
# its parent's row unless it has one of its own.
STATUS_BY_ERROR: Mapping[type[DomainError], tuple[int, ErrorType]] = {
    InvalidRequest: (400, "invalid_request_error"),
    AuthenticationFailed: (401, "authentication_error"),
    NotFound: (404, "invalid_request_error"),
    Conflict: (409, "invalid_request_error"),
    IdempotencyError: (409, "idempotency_error"),
    RateLimited: (429, "rate_limit_error"),
    ServiceUnavailable: (503, "api_error"),
    DomainError: (400, "invalid_request_error"),
}

# Body fields whose every problem has a dedicated code and message (a float amount is an
# amount error, not a type error).
_FIELD_ERRORS: Mapping[str, tuple[str, str]] = {
    "amount": ("invalid_amount", 'amount must be a decimal string such as "25.00"'),
}
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})
RETRY_AFTER = "Retry-After"
OVERLOAD_RETRY_AFTER_SECONDS = 1
POOL_EXHAUSTED = Counter(
    "stablegate_api_overloaded_total",
    "API requests answered 503 gateway_overloaded: no database connection came free within "
    "DATABASE_POOL_TIMEOUT_SECONDS",
)
INTERNAL_ERROR_MESSAGE = (
    "An internal error occurred. It has been logged; quote the request id if you contact us."
)


class ErrorDetail(BaseModel):
    type: ErrorType = Field(description="the error's family")
    code: str | None = Field(
        description="a stable machine-readable code", examples=["invalid_amount"]
    )
    message: str = Field(description="a human-readable explanation")
    param: str | None = Field(description="the request parameter at fault, if any")
    request_id: str | None = Field(description="the `Request-Id` of the failed request")


class ErrorResponse(BaseModel):
    error: ErrorDetail


def _describe(description: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": ErrorResponse,
        "description": description,
        "content": {"application/json": {"example": {"error": example}}},
    }


_RATE_LIMIT_HEADERS = {
    name: {"description": description, "schema": {"type": "integer"}}
    for name, description in (
        ("Retry-After", "seconds to wait before retrying"),
        ("RateLimit-Limit", "requests the key may make at once (the bucket's size)"),
        ("RateLimit-Remaining", "requests left in the bucket now"),
        ("RateLimit-Reset", "seconds until the bucket is full again"),
    )
}
RATE_LIMITED_RESPONSE: dict[int | str, dict[str, Any]] = {
    429: {
        **_describe(
            "too many requests for this API key: wait `Retry-After` seconds",
            {
                "type": "rate_limit_error",
                "code": "rate_limit_exceeded",
                "message": "Too many requests: this API key may make 200 requests at once, "
                "refilled at 100 per second. Retry after 1 s.",
                "param": None,
                "request_id": "req_01JDQ0000000000000000000000",
            },
        ),
        "headers": _RATE_LIMIT_HEADERS,
    }
}
IDEMPOTENCY_RESPONSE: dict[int | str, dict[str, Any]] = {
    409: _describe(
        "the `Idempotency-Key` was used with another request (`idempotency_key_reused`), or "
        "a request with it is still running (`idempotency_key_in_use`: retry shortly); the "
        "operation's own conflicts use this status too",
        {
            "type": "idempotency_error",
            "code": "idempotency_key_reused",
            "message": "This Idempotency-Key was already used with a different request "
            "(method, path or body). Use a new key for a new request.",
            "param": "Idempotency-Key",
            "request_id": "req_01JDQ0000000000000000000000",
        },
    )
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _describe(
        "invalid request: the body or a parameter is missing or wrong (`param` names it)",
        {
            "type": "invalid_request_error",
            "code": "invalid_amount",
            "message": "amount must be greater than zero",
            "param": "amount",
            "request_id": "req_01JDQ0000000000000000000000",
        },
    ),
    401: _describe(
        "missing, unknown or expired credentials",
        {
            "type": "authentication_error",
            "code": "invalid_api_key",
            "message": "Invalid API key provided.",
            "param": None,
            "request_id": "req_01JDQ0000000000000000000000",
        },
    ),
    **RATE_LIMITED_RESPONSE,
    503: {
        **_describe(
            "nothing was done: the gateway is at capacity (`gateway_overloaded`) or a "
            "price feed is stale (`rates_unavailable`); retry after `Retry-After` seconds "
            "with the same `Idempotency-Key`",
            {
                "type": "api_error",
                "code": "gateway_overloaded",
                "message": "The gateway is at capacity (no database connection came free in "
                "time). Nothing was done; retry shortly with the same Idempotency-Key.",
                "param": None,
                "request_id": "req_01JDQ0000000000000000000000",
            },
        ),
        "headers": {"Retry-After": _RATE_LIMIT_HEADERS["Retry-After"]},
    },
}
NOT_FOUND_RESPONSE: dict[int | str, dict[str, Any]] = {
    404: _describe(
        "no such object for this merchant",
        {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": "No such payment_intent: 'pi_01JDQ0000000000000000000000'",
            "param": "id",
            "request_id": "req_01JDQ0000000000000000000000",
        },
    )
}


def error_body(
    error_type: ErrorType, code: str | None, message: str, param: str | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "request_id": request_id_var.get(),
        }
    }


def error_response(
    status: int,
    error_type: ErrorType,
    code: str | None,
    message: str,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(error_type, code, message, param), status_code=status, headers=headers
    )


def status_for(error: DomainError) -> tuple[int, ErrorType]:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400, "invalid_request_error"  # pragma: no cover - DomainError is in the table


def domain_error_response(error: DomainError) -> JSONResponse:
    status, error_type = status_for(error)
    if status >= 500:
        log.warning("request failed", extra={"code": error.code, "error": error.message})
    headers = error.decision.headers() if isinstance(error, RateLimited) else None
    return error_response(status, error_type, error.code, error.message, error.param, headers)


def from_validation_errors(errors: Sequence[Mapping[str, Any]]) -> InvalidRequest:
    """The first of pydantic's errors as a domain error naming the parameter.

    Accepts both FastAPI's (location first: `("query", "limit")`) and a bare model's
    (`("metadata", "order")`) error lists.
    """
    if not errors:
        return InvalidRequest("The request is invalid.", code="invalid_request")
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())]
    if loc and loc[0] in _SOURCES:
        loc = loc[1:]
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        return InvalidRequest("The request body is not valid JSON.", code="invalid_json")
    param = _param_name(loc)
    if param is None:
        return InvalidRequest(f"The request body is invalid: {first.get('msg')}.")
    if kind == "missing":
        return InvalidRequest(
            f"Missing required parameter: {param}.", param=param, code="parameter_missing"
        )
    if kind == "extra_forbidden":
        return InvalidRequest(
            f"Received unknown parameter: {param}.", param=param, code="parameter_unknown"
        )
    if loc[0] in _FIELD_ERRORS:
        code, message = _FIELD_ERRORS[loc[0]]
        return InvalidRequest(
            f"{message}, not {_json_kind(first.get('input'))}.", param=param, code=code
        )
    return InvalidRequest(
        f"Invalid {param}: {_message(first)}.", param=param, code="parameter_invalid"
    )


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a JSON number"
    return f"a {type(value).__name__}"


def _param_name(loc: Sequence[str]) -> str | None:
    """Stripe's spelling of a nested parameter: `metadata[order_id]`."""
    if not loc:
        return None
    return loc[0] + "".join(f"[{part}]" for part in loc[1:])


def _message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    return message[0].lower() + message[1:] if message else message


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return domain_error_response(exc)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return domain_error_response(from_validation_errors(exc.errors()))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _http_error_response(request, exc)

    async def on_pool_exhausted(request: Request, exc: Exception) -> JSONResponse:
        # Overload, not a bug: every connection stayed busy for the whole pool timeout.
        # Nothing was written (a 5xx is never stored for an Idempotency-Key); say so,
        # and when to come back, instead of a 500.
        POOL_EXHAUSTED.inc()
        response = domain_error_response(
            ServiceUnavailable(
                "The gateway is at capacity (no database connection came free in time). "
                "Nothing was done; retry shortly with the same Idempotency-Key.",
                code="gateway_overloaded",
            )
        )
        response.headers[RETRY_AFTER] = str(OVERLOAD_RETRY_AFTER_SECONDS)
        return response

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(PoolTimeout, on_pool_exhausted)


def _http_error_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = f"Unrecognized request URL ({request.method}: {request.url.path})."
        return error_response(
            404, "invalid_request_error", "resource_missing", message, None, headers
        )
    if exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
        return error_response(
            405, "invalid_request_error", "method_not_allowed", message, None, headers
        )
    if exc.status_code >= 500:
        return error_response(
            exc.status_code, "api_error", None, INTERNAL_ERROR_MESSAGE, None, headers
        )
    error_type: ErrorType = (
        "authentication_error" if exc.status_code == 401 else "invalid_request_error"
    )
    return error_response(exc.status_code, error_type, None, str(exc.detail), None, headers)
