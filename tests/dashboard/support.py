"""Helpers of the dashboard suite: deliver events as the bus would, sign in as an ops
user the way a browser does (login form, CSRF field, cookie), and a stand-in for the
gateway's HTTP API that records what the dashboard asked of it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from stablegate_common.bus import idempotent
from stablegate_common.core.ids import new_id
from stablegate_common.db import Database
from stablegate_common.events import Event, make_event
from stablegate_common.events.contracts import (
    AddressesProvisioned,
    BalanceUpdated,
    DiscrepancyFound,
    DiscrepancyResolved,
    ReconciliationRunCompleted,
)
from stablegate_dashboard.app import CONSUMERS

HANDLERS = {keys[0].split(".")[0]: (name, handler) for name, keys, handler in CONSUMERS}
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery staple"


async def deliver(db: Database, event: Event) -> None:
    """What the bus does: the consumer bound to the event's family, behind the inbox."""
    name, handler = HANDLERS[event.type.split(".")[0]]
    await idempotent(db, name, handler)(event)


def csrf_of(html: str) -> str:
    found = CSRF_INPUT.search(html)
    assert found is not None, "no csrf_token field on the page"
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    form = await client.get("/login")
    assert form.status_code == 200
    return await client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form.text), "next": "/"},
    )


async def page_token(client: httpx.AsyncClient, path: str = "/intents") -> str:
    """The session's CSRF token, as a signed-in page carries it in its forms."""
    page = await client.get(path)
    assert page.status_code == 200, page.text[:500]
    return csrf_of(page.text)


@dataclass
class FakeGateway:
    """The gateway's API as the dashboard sees it, answering from these lists; every
    request is kept. `refuse` makes the next POST answer with that error."""

    endpoints: list[dict[str, Any]] = field(default_factory=list)
    deliveries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    refuse: tuple[int, str] | None = None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def posts(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST"]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST":
            if self.refuse is not None:
                status, code = self.refuse
                self.refuse = None
                error = {"type": "invalid_request_error", "code": code, "message": code}
                return httpx.Response(status, json={"error": error})
            return httpx.Response(200, json={"id": path.split("/")[3], "ok": True})
        if path == "/v1/webhook_endpoints":
            return httpx.Response(200, json=_list(self.endpoints))
        parts = path.split("/")
        if len(parts) == 5 and parts[4] == "deliveries":
            return httpx.Response(200, json=_list(self.deliveries.get(parts[3], [])))
        return httpx.Response(404, json={"error": {"code": "resource_missing", "message": path}})


def _list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": items, "has_more": False}


def endpoint(url: str = "https://shop.example/hooks", **overrides: Any) -> dict[str, Any]:
    body = {
        "id": new_id("we"),
        "object": "webhook_endpoint",
        "url": url,
        "enabled_events": ["*"],
        "status": "enabled",
        "created_at": "2025-01-01T00:00:00Z",
    }
    return {**body, **overrides}


def delivery(status: str = "succeeded", **overrides: Any) -> dict[str, Any]:
    body = {
        "id": new_id("whd"),
        "object": "webhook_delivery",
        "event_id": new_id("evt"),
        "event_type": "payment_intent.paid",
        "status": status,
        "attempts": 1,
        "last_status_code": 200 if status == "succeeded" else 500,
        "last_error": None if status == "succeeded" else "HTTP 500",
        "created_at": "2025-01-01T00:00:00Z",
    }
    return {**body, **overrides}


def provisioned_event(family: str, addresses: list[str], first_index: int = 0) -> Event:
    payload = AddressesProvisioned(family=family, addresses=addresses, first_index=first_index)
    return make_event(payload, producer="gateway", subject=family, sequence=first_index)


def balance_event(
    merchant: str, available: int, *, sequence: int, network: str = "ethereum"
) -> Event:
    payload = BalanceUpdated(
        merchant_id=merchant,
        network=network,
        asset="USDT",
        decimals=6,
        available_base_units=available,
    )
    subject = f"{merchant}:{network}:USDT"
    return make_event(payload, producer="reconciler", subject=subject, sequence=sequence)


def run_event(status: str = "completed", **overrides: Any) -> Event:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "run_id": new_id("rec"),
        "status": status,
        "started_at": now - timedelta(seconds=2),
        "finished_at": now,
        "addresses_checked": 4,
        "discrepancies": 0,
        "discrepancies_opened": 0,
        "discrepancies_resolved": 0,
        "networks": {"ethereum": {"block": 120, "addresses": 4}},
    }
    values.update(overrides)
    payload = ReconciliationRunCompleted(**values)
    return make_event(payload, producer="reconciler", subject=values["run_id"], sequence=1)


def discrepancy_events(address: str, *, ledger: int, chain: int) -> tuple[Event, Event]:
    """The opening and the resolution of one discrepancy (same subject)."""
    subject = new_id("disc")
    found = DiscrepancyFound(
        network="ethereum",
        asset="USDT",
        address=address,
        ledger_base_units=ledger,
        chain_base_units=chain,
    )
    resolved = DiscrepancyResolved(
        network="ethereum", asset="USDT", address=address, resolved_run_id=new_id("rec")
    )
    return (
        make_event(found, producer="reconciler", subject=subject, sequence=1),
        make_event(resolved, producer="reconciler", subject=subject, sequence=2),
    )


def sse_messages(text: str) -> list[dict[str, Any]]:
    """The `data:` payloads of a server-sent event stream."""
    return [
        json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")
    ]
