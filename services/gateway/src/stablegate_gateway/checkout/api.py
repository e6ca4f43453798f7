"""The hosted checkout's routes: the page `GET /pay/{id}`, its live status
`GET /pay/{id}/status` (polled by the page), its QR code `GET /pay/{id}/qr.svg`, and the
page's static files under `/static/checkout/` (Bootstrap vendored, no CDN).

No authentication: the unguessable intent id in the link is the customer's credential,
so every response is read-only, uncached and carries a strict Content-Security-Policy
(the page loads nothing but this host's own files).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from stablegate_common.core.errors import NotFound
from stablegate_common.logging import intent_id_var
from stablegate_gateway.api.dependencies import Context
from stablegate_gateway.checkout import repository
from stablegate_gateway.checkout.i18n import Translator, catalogues, negotiate
from stablegate_gateway.checkout.qr import qr_svg
from stablegate_gateway.checkout.repository import CheckoutRecord
from stablegate_gateway.checkout.service import (
    CheckoutPage,
    checkout_page,
    customer_status,
    qr_payload,
)
from stablegate_gateway.context import GatewayContext

PACKAGE = Path(__file__).parent
STATIC_DIR = PACKAGE / "static"
STATIC_PREFIX = "/static/checkout"
# How often the page asks for its status (ms); slower once the payment has ended, in
# case a late transfer or a reorg still changes it.
POLL_MS = 2000
FINAL_POLL_MS = 15000

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the page's URL is the customer's credential
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

router = APIRouter(include_in_schema=False)
router.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="checkout-static")

Lang = Annotated[str | None, Query(max_length=16, description="language code, e.g. `es`")]


@cache
def templates() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(PACKAGE / "templates"),
        autoescape=True,  # every value is text unless a template says otherwise
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["static"] = static_url
    environment.filters["clock"] = clock
    return environment


@cache
def static_url(name: str) -> str:
    """A static file's URL, versioned by its content so browsers never keep a stale one."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    return f"{STATIC_PREFIX}/{name}?v={digest}"


def clock(seconds: int) -> str:
    """`3599` → `59:59`, `3600` → `1:00:00`: the countdown as the script prints it."""
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@router.get("/pay/{intent_id}", response_class=HTMLResponse)
async def checkout(ctx: Context, request: Request, intent_id: str, lang: Lang = None) -> Response:
    t = _translator(request, lang)
    record = await _load(ctx, intent_id)
    if record is None:
        return _html("not_found.html", {"t": t, "locale": t.locale}, status_code=404)
    page = checkout_page(record, ctx, t, datetime.now(UTC))
    context = {
        "t": t,
        "locale": t.locale,
        "locales": {code: entries["language.name"] for code, entries in catalogues().items()},
        "page": page,
        "status": page.status,
        "config": _script_config(page, t),
    }
    return _html("checkout.html", context)


@router.get("/pay/{intent_id}/status")
async def checkout_status(
    ctx: Context, request: Request, intent_id: str, lang: Lang = None
) -> JSONResponse:
    t = _translator(request, lang)
    record = await _found(ctx, intent_id)
    body = customer_status(record, ctx, t, datetime.now(UTC))
    return JSONResponse(body, headers=_headers(t.locale))


@router.get("/pay/{intent_id}/qr.svg")
async def checkout_qr(ctx: Context, intent_id: str) -> Response:
    """The QR code for what is still to send now (the `v` query only busts caches)."""
    record = await _found(ctx, intent_id)
    status = customer_status(record, ctx, Translator("en"), datetime.now(UTC))
    if not status["accepts_payment"]:
        raise NotFound("This payment takes no more funds.", param="id")
    svg = qr_svg(qr_payload(status))
    return Response(svg, media_type="image/svg+xml", headers=SECURITY_HEADERS)


async def _load(ctx: GatewayContext, intent_id: str) -> CheckoutRecord | None:
    intent_id_var.set(intent_id)
    async with ctx.db.sessions() as session:
        return await repository.load(session, intent_id)


async def _found(ctx: GatewayContext, intent_id: str) -> CheckoutRecord:
    record = await _load(ctx, intent_id)
    if record is None:
        raise NotFound(f"No such payment_intent: {intent_id!r}", param="id")
    return record


def _translator(request: Request, lang: str | None) -> Translator:
    return Translator(negotiate(lang, request.headers.get("accept-language")))


def _script_config(page: CheckoutPage, t: Translator) -> dict[str, Any]:
    intent_id = page.intent_id
    return {
        "family": page.family,
        "statusUrl": f"/pay/{intent_id}/status?lang={t.locale}",
        "qrUrl": f"/pay/{intent_id}/qr.svg",
        "pollMs": POLL_MS,
        "finalPollMs": FINAL_POLL_MS,
        "status": page.status,
        "messages": t.messages("pay.") | t.messages("expiry.") | t.messages("return."),
    }


def _html(template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    body = templates().get_template(template).render(context)
    return HTMLResponse(body, status_code=status_code, headers=_headers(context["locale"]))


def _headers(locale: str) -> dict[str, str]:
    return {**SECURITY_HEADERS, "Content-Language": locale, "Vary": "Accept-Language"}
