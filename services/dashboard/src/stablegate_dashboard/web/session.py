"""Login sessions in a cookie, and the CSRF and role checks every action passes.

The cookie holds a JWT (`JwtSigner`, HS256) naming the user and the session row; each
request resumes the row, so logout and disabled users take effect at once. It is
HttpOnly (scripts never see it) and SameSite=Lax: a link from a chat message opens the
dashboard signed in, while a cross-site POST never carries it. CSRF tokens are the real
defence for forms: a synchronizer token kept in the session row, echoed by every form as
`csrf_token`. The login form has no session yet, so it uses a double-submit cookie.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request, Response

from stablegate_common.core.errors import AuthenticationFailed
from stablegate_dashboard.users.service import Principal, resume_session
from stablegate_dashboard.web.context import Ctx, DashboardContext

SESSION_COOKIE = "sg_session"
LOGIN_CSRF_COOKIE = "sg_login_csrf"
CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, JSON answers 401."""


class Forbidden(Exception):
    """Signed in, but this request is refused (missing CSRF token, or a viewer acting)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def cookie_is_secure(ctx: DashboardContext, request: Request) -> bool:
    mode = ctx.settings.dashboard.cookie_secure
    if mode == "auto":
        return request.url.scheme == "https"
    return mode == "always"


def set_session_cookie(
    ctx: DashboardContext, request: Request, response: Response, token: str, expires: datetime
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        expires=expires,
        path="/",
        httponly=True,
        samesite="lax",
        secure=cookie_is_secure(ctx, request),
    )


def clear_session_cookie(ctx: DashboardContext, request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=cookie_is_secure(ctx, request),
    )


async def find_principal(ctx: DashboardContext, request: Request) -> Principal | None:
    """The signed-in user of this request, or None (cached on the request)."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    principal = None
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            claims = ctx.signer.verify(token)
            async with ctx.db.sessions() as session:
                principal = await resume_session(
                    session, session_id=str(claims.get("sid", "")), user_id=str(claims["sub"])
                )
        except AuthenticationFailed:
            principal = None
    request.state.principal = principal
    return principal


async def current_principal(ctx: Ctx, request: Request) -> Principal:
    principal = await find_principal(ctx, request)
    if principal is None:
        raise LoginRequired()
    return principal


User = Annotated[Principal, Depends(current_principal)]


def tokens_match(expected: str, presented: object) -> bool:
    return (
        isinstance(presented, str)
        and bool(expected)
        and hmac.compare_digest(expected.encode(), presented.encode())
    )


async def csrf_checked(request: Request, principal: User) -> Principal:
    """The form must carry the session's token; anything else is refused with 403."""
    form = await request.form()
    if not tokens_match(principal.csrf_token, form.get(CSRF_FIELD)):
        raise Forbidden("csrf", "This form is missing its security token or it has expired.")
    return principal


async def admin_action(principal: Annotated[Principal, Depends(csrf_checked)]) -> Principal:
    if not principal.can_act:
        raise Forbidden("role", "Your role (viewer) can look but not act.")
    return principal


Admin = Annotated[Principal, Depends(admin_action)]
Checked = Annotated[Principal, Depends(csrf_checked)]


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def login_csrf_valid(request: Request, presented: object) -> bool:
    return tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE, ""), presented)


def set_login_csrf_cookie(
    ctx: DashboardContext, request: Request, response: Response, token: str
) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=cookie_is_secure(ctx, request),
    )
