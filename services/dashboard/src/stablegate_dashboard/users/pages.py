"""`/login` and `/logout`: the login form, the session cookie, and its revocation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from stablegate_common.core.errors import AuthenticationFailed
from stablegate_dashboard.users import service
from stablegate_dashboard.web.context import Ctx, DashboardContext
from stablegate_dashboard.web.session import (
    CSRF_FIELD,
    Checked,
    Forbidden,
    clear_session_cookie,
    find_principal,
    login_csrf_valid,
    new_login_csrf,
    set_login_csrf_cookie,
    set_session_cookie,
)

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only a path on this site: never `//host` or a full URL (an open redirect)."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(c.isprintable() and not c.isspace() for c in target)  # browsers drop tabs
    ):
        return target
    return "/"


def _login_form(
    ctx: DashboardContext,
    request: Request,
    *,
    next_path: str,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    token = new_login_csrf()
    response = ctx.pages.render(
        request,
        "login.html",
        status_code=status_code,
        login_csrf=token,
        next_path=next_path,
        email=email,
        error=error,
    )
    set_login_csrf_cookie(ctx, request, response, token)
    return response


@router.get("/login")
async def login_page(ctx: Ctx, request: Request, next: str | None = None) -> Response:
    if await find_principal(ctx, request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_form(ctx, request, next_path=safe_next(next))


@router.post("/login")
async def login(ctx: Ctx, request: Request) -> Response:
    form = await request.form()
    if not login_csrf_valid(request, form.get(CSRF_FIELD)):
        raise Forbidden("csrf", "The login form expired. Reload the page and sign in again.")
    email = str(form.get("email", ""))
    next_path = safe_next(str(form.get("next", "/")))
    try:
        async with ctx.db.transaction() as session:
            user = await service.authenticate(
                session, email=email, password=str(form.get("password", ""))
            )
            opened = await service.open_session(
                session, user, ttl_seconds=ctx.settings.dashboard.session_ttl_seconds
            )
    except AuthenticationFailed as exc:
        return _login_form(
            ctx, request, next_path=next_path, email=email, error=exc.message, status_code=401
        )
    token, expires = ctx.signer.issue(user.id, {"sid": opened.id})
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(ctx, request, response, token, expires)
    return response


@router.post("/logout")
async def logout(ctx: Ctx, request: Request, principal: Checked) -> Response:
    async with ctx.db.transaction() as session:
        await service.close_session(session, principal.session_id)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(ctx, request, response)
    return response
