"""The one table that turns errors into HTTP statuses: the JSON error envelope under
`/api/` and `/live/`, an HTML page everywhere else.

Not signed in: pages redirect to the login form (coming back afterwards), JSON answers
401. A refused action (no CSRF token, a viewer acting) is a 403 in both.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from stablegate_common.core.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
)
from stablegate_dashboard.web.session import Forbidden, LoginRequired

_STATUS: tuple[tuple[type[DomainError], int, str], ...] = (
    (NotFound, 404, "invalid_request_error"),
    (InvalidRequest, 400, "invalid_request_error"),
    (Conflict, 409, "invalid_request_error"),
    (AuthenticationFailed, 401, "authentication_error"),
    (ServiceUnavailable, 503, "api_error"),
)
_JSON_PREFIXES = ("/api/", "/live/")
_TITLES = {400: "Bad request", 401: "Sign in", 403: "Not allowed", 404: "Not found"}


def wants_json(request: Request) -> bool:
    return request.url.path.startswith(_JSON_PREFIXES)


def _envelope(status: int, kind: str, code: str, message: str, param: str | None) -> JSONResponse:
    body = {"error": {"type": kind, "code": code, "message": message, "param": param}}
    return JSONResponse(body, status_code=status)


def _page(request: Request, status: int, message: str) -> Response:
    pages = request.app.state.dashboard.pages
    title = _TITLES.get(status, "Something went wrong")
    response: Response = pages.render(
        request, "error.html", status_code=status, title=title, message=message
    )
    return response


def _respond(
    request: Request, status: int, kind: str, code: str, message: str, param: str | None
) -> Response:
    if wants_json(request):
        return _envelope(status, kind, code, message, param)
    return _page(request, status, message)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    for cls, status, kind in _STATUS:
        if isinstance(exc, cls):
            return _respond(request, status, kind, exc.code, exc.message, exc.param)
    return _respond(request, 400, "invalid_request_error", exc.code, exc.message, exc.param)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body")]
    param = ".".join(loc) or None
    message = f"{param}: {first.get('msg', 'invalid')}" if param else "invalid request"
    return _respond(request, 400, "invalid_request_error", "parameter_invalid", message, param)


async def _login_required(request: Request, exc: Exception) -> Response:
    if wants_json(request):
        return _envelope(401, "authentication_error", "login_required", "sign in first", None)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    code = "csrf_token_invalid" if exc.reason == "csrf" else "role_forbidden"
    return _respond(request, 403, "permission_error", code, exc.message, None)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "There is no page here." if exc.status_code == 404 else str(exc.detail)
    response = _respond(
        request, exc.status_code, "invalid_request_error", "http_error", message, None
    )
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(HTTPException, _http_error)
