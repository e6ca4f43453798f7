"""Jinja2 rendering of the pages, with autoescaping always on.

Everything a merchant or a chain can write (references, metadata, addresses) reaches the
page through `{{ … }}` and is escaped; data for scripts travels as JSON inside
`<script type="application/json">` through `tojson`, which escapes `<`, `>` and `&`. No
template marks anything `|safe`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from stablegate_common.core.assets import AssetRegistry
from stablegate_common.core.errors import UnknownNetwork
from stablegate_common.core.money import format_amount
from stablegate_dashboard.web.notices import notice_of

STATUS_TONES = {
    "awaiting_payment": "secondary",
    "confirming": "info",
    "partially_paid": "warning",
    "paid": "success",
    "requires_action": "danger",
    "expired": "light",
    "canceled": "light",
    # transfers, deliveries, runs, discrepancies, health
    "detected": "info",
    "pending": "info",
    "confirmed": "success",
    "reverted": "danger",
    "attributed": "success",
    "unsolicited": "warning",
    "ignored": "light",
    "succeeded": "success",
    "failed": "danger",
    "completed": "success",
    "partial": "warning",
    "running": "info",
    "open": "danger",
    "resolved": "success",
    "ok": "success",
    "ready": "success",
    "lagging": "warning",
    "stale": "danger",
    "down": "danger",
    "not_ready": "danger",
    "enabled": "success",
    "disabled": "secondary",
    "free": "success",
    "allocated": "primary",
    "cooling": "warning",
    # outgoing transfers and their batches (signing rounds)
    "planned": "secondary",
    "awaiting_signature": "warning",
    "signed": "info",
    "broadcast": "info",
    "broadcasting": "info",
    "processing": "info",
    "replaced": "light",
    "admin": "primary",
    "viewer": "secondary",
}


def status_tone(status: str | None) -> str:
    return STATUS_TONES.get(status or "", "secondary")


def status_label(status: str | None) -> str:
    """`awaiting_payment` → "Awaiting payment" (sentence case, like the best dashboards)."""
    text = (status or "—").replace("_", " ")
    return text[:1].upper() + text[1:]


def amount(base_units: int | None, decimals: int) -> str:
    """An amount for people: thousands grouped, at least two decimals, never rounded."""
    if base_units is None:
        return "—"
    return group_thousands(format_amount(base_units, decimals))


def group_thousands(text: str) -> str:
    sign = "-" if text.startswith("-") else ""
    whole, _, frac = text.lstrip("-").partition(".")
    grouped = f"{int(whole):,}"
    return f"{sign}{grouped}.{frac}" if frac else f"{sign}{grouped}"


def decimal_text(value: Decimal) -> str:
    """A summed amount for people: grouped, trailing zeros trimmed to two decimals."""
    text = format(value, "f")
    if "." in text:
        whole, frac = text.split(".")
        text = f"{whole}.{frac.rstrip('0').ljust(2, '0')}"
    return group_thousands(text)


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 0:
        return "in " + duration(-seconds)
    if seconds < 5:
        return "just now"
    return duration(seconds) + " ago"


def duration(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    units = (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1))
    parts = []
    rest = int(seconds)
    for name, size in units:
        if rest >= size:
            parts.append(f"{rest // size}{name}")
            rest %= size
        if len(parts) == 2:
            break
    return " ".join(parts) or "0s"


def short(value: str | None, head: int = 8, tail: int = 6) -> str:
    if not value:
        return "—"
    return value if len(value) <= head + tail + 1 else f"{value[:head]}…{value[-tail:]}"


NETWORK_LABELS = {"ethereum": "Ethereum", "bsc": "BSC", "tron": "Tron"}


def network_label(network: str) -> str:
    """The short name for tight cells; `network_name` gives the registry's full one."""
    return NETWORK_LABELS.get(network, network.title())


def percent(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


class Pages:
    """Renders a template with what every page shows (the user, the CSRF token, nav)."""

    def __init__(self, registry: AssetRegistry, *, static_version: str) -> None:
        self.registry = registry
        self.static_version = static_version
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("stablegate_dashboard", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            amount=amount,
            when=when,
            ago=ago,
            duration=duration,
            short=short,
            percent=percent,
            tone=status_tone,
            label=status_label,
            decimal=decimal_text,
        )
        self.env.globals.update(
            explorer_url=self.explorer_url,
            network_name=self.network_name,
            network_label=network_label,
            static=self.static_url,
        )

    def static_url(self, path: str) -> str:
        return f"/static/{path}?v={self.static_version}"

    def explorer_url(self, network: str, tx_hash: str) -> str:
        try:
            template = self.registry.network(network).explorer_tx_url
        except UnknownNetwork:
            return ""
        return template.replace("{tx}", tx_hash) if template else ""

    def network_name(self, network: str) -> str:
        try:
            return self.registry.network(network).display_name or network
        except UnknownNetwork:
            return network

    def render(
        self, request: Request, template: str, *, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        principal = getattr(request.state, "principal", None)
        page = {
            "nav": None,
            "request_path": request.url.path,
            "principal": principal,
            "csrf_token": principal.csrf_token if principal is not None else "",
            "now": datetime.now(UTC),
            "notice": notice_of(request),
            **values,
        }
        html = self.env.get_template(template).render(page)
        return HTMLResponse(html, status_code=status_code)
