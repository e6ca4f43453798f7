"""The one table that turns domain errors into HTTP statuses and the JSON error envelope."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from stablegate_common.core.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
)

_STATUS: tuple[tuple[type[DomainError], int, str], ...] = (
    (NotFound, 404, "invalid_request_error"),
    (InvalidRequest, 400, "invalid_request_error"),
    (Conflict, 409, "invalid_request_error"),
    (AuthenticationFailed, 401, "authentication_error"),
    (ServiceUnavailable, 503, "api_error"),
)


def _envelope(status: int, kind: str, code: str, message: str, param: str | None) -> JSONResponse:
    body = {"error": {"type": kind, "code": code, "message": message, "param": param}}
    return JSONResponse(body, status_code=status)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    for cls, status, kind in _STATUS:
        if isinstance(exc, cls):
            return _envelope(status, kind, exc.code, exc.message, exc.param)
    return _envelope(400, "invalid_request_error", exc.code, exc.message, exc.param)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body")]
    param = ".".join(loc) or None
    message = f"{param}: {first.get('msg', 'invalid')}" if param else "invalid request"
    return _envelope(400, "invalid_request_error", "parameter_invalid", message, param)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
