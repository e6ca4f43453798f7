"""The gateway's ops API as the Outgoing pages' tests see it: a small real HTTP server on
a local port that speaks spec-14's paths and shapes (signing rounds) and the refunds and
payouts ops API (`/ops/v1/disbursements`), and keeps every request it got, so the tests
see exactly what crossed the wire: the bearer token, the idempotency key, the approving
admin, the signed file's bytes. With the fixtures that point the dashboard at it and sign
in an admin and a viewer (import them into a test module to use them)."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr

from stablegate_common.core.ids import new_id
from stablegate_dashboard.settings import DashboardConfig

SignedIn = Callable[[str], Awaitable[httpx.AsyncClient]]
OPS_TOKEN = "ops-token-" + "7" * 32
TREASURY = "0x" + "7e" * 20
DEPOSIT = "0x" + "d1" * 20
FEE_WALLET = "0x" + "fe" * 20
TX_HASH = "0x" + "ab" * 32
CUSTOMER = "0x" + "c5" * 20
FINISHED = frozenset({"completed", "failed", "canceled"})  # a round no longer in flight
# A request document as a gateway would store it: its own whitespace and key order, a
# non-ASCII note. The dashboard must hand these bytes over untouched (the digest covers
# them), so a re-serialisation anywhere would show.
REQUEST_TEMPLATE = (
    '{{"version": 1,  "request_id": "{id}",\n'
    ' "note": "sweep \\u2192 treasury",\r\n "transactions": []}}\n'
)


# -- the ops API stand-in ---------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class OpsGateway:
    """The gateway's ops API as spec-14 describes it, answering from `batches` and
    `disbursements` (refunds and payouts, with the gateway's four-eyes rules)."""

    url: str = ""
    batches: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    documents: dict[str, bytes] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    off: bool = False  # the gateway's GATEWAY_OPS_TOKEN unset: 404 for all of it
    reject_signed: str | None = None  # the reason the next signed file is refused with
    disbursements: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    fail_disbursements: tuple[int, str, str] | None = None  # the next call's (status, code, …)

    def posts(self) -> list[Received]:
        return [r for r in self.received if r.method == "POST"]

    def find(self, batch_id: str) -> dict[str, Any] | None:
        return next((b for b in self.batches if b["id"] == batch_id), None)

    def add_disbursement(self, kind: str = "refund", **overrides: Any) -> dict[str, Any]:
        made = disbursement(kind, **overrides)
        self.disbursements.append(made)
        return made

    def add(self, **overrides: Any) -> dict[str, Any]:
        made = batch(**overrides)
        self.batches.append(made)
        self.documents[made["id"]] = REQUEST_TEMPLATE.format(id=made["id"]).encode()
        return made


def error(status: int, code: str, message: str, param: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "api_error"
    body = {"error": {"type": kind, "code": code, "message": message, "param": param}}
    return JSONResponse(body, status_code=status)


def listed(item: dict[str, Any]) -> dict[str, Any]:
    """A batch as the list shows it: without its transfers, with their count."""
    return {k: v for k, v in item.items() if k != "transfers"}


def ops_app(state: OpsGateway) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def record_and_authorize(request: Request, call_next: Any) -> Response:
        state.received.append(
            Received(
                request.method,
                request.url.path,
                dict(request.query_params),
                {k.lower(): v for k, v in request.headers.items()},
                await request.body(),
            )
        )
        if state.off:
            return error(404, "resource_missing", "Unrecognized request URL")
        if request.headers.get("authorization") != f"Bearer {OPS_TOKEN}":
            return error(401, "invalid_api_key", "Invalid ops token")
        response: Response = await call_next(request)
        return response

    @app.get("/ops/v1/outgoing/batches")
    async def list_batches(limit: int = 20, starting_after: str | None = None) -> Any:
        newest_first = list(reversed(state.batches))
        if starting_after is not None:
            ids = [b["id"] for b in newest_first]
            if starting_after not in ids:
                return error(404, "resource_missing", "no such batch", "starting_after")
            newest_first = newest_first[ids.index(starting_after) + 1 :]
        page = newest_first[:limit]
        return {
            "object": "list",
            "data": [listed(b) for b in page],
            "has_more": len(newest_first) > limit,
        }

    @app.get("/ops/v1/outgoing/batches/{batch_id}")
    async def get_batch(batch_id: str) -> Any:
        found = state.find(batch_id)
        return found or error(404, "resource_missing", f"No such outgoing batch: {batch_id!r}")

    @app.post("/ops/v1/outgoing/sweeps")
    async def plan(request: Request) -> Any:
        network = (await request.json()).get("network")
        networks = [network] if network else ["ethereum", "bsc", "tron"]
        made = [state.add(network=n) for n in networks]
        return {"object": "list", "data": made, "has_more": False}

    @app.post("/ops/v1/outgoing/batches/{batch_id}/issue")
    async def issue(batch_id: str) -> Any:
        found = state.find(batch_id)
        if found is None:
            return error(404, "resource_missing", f"No such outgoing batch: {batch_id!r}")
        if found["status"] not in ("planned", "awaiting_signature"):
            return error(409, "invalid_state", f"batch {batch_id} is {found['status']}")
        found["status"] = "awaiting_signature"
        for t in found["transfers"]:
            t["state"] = "awaiting_signature"
        return Response(
            state.documents[batch_id],
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{batch_id}.json"'},
        )

    @app.post("/ops/v1/outgoing/signed_responses")
    async def accept(request: Request) -> Any:
        if state.reject_signed is not None:
            reason, state.reject_signed = state.reject_signed, None
            return error(422, "signed_response_rejected", reason, "signature")
        try:
            request_id = json.loads(await request.body())["request_id"]
        except (ValueError, KeyError, TypeError):
            return error(422, "signed_response_rejected", "not a signed response", "body")
        found = state.find(request_id)
        if found is None:
            return error(422, "signed_response_rejected", f"no batch {request_id}", "request_id")
        found["status"] = "signed"
        for t in found["transfers"]:
            t["state"], t["tx_hash"] = "signed", TX_HASH
        return found

    @app.post("/ops/v1/outgoing/batches/{batch_id}/cancel")
    async def cancel(batch_id: str) -> Any:
        found = state.find(batch_id)
        if found is None:
            return error(404, "resource_missing", f"No such outgoing batch: {batch_id!r}")
        if found["status"] not in ("planned", "awaiting_signature", "signed"):
            return error(
                409, "invalid_state", f"batch {batch_id} is {found['status']}: nothing to cancel"
            )
        found["status"] = "canceled"
        for t in found["transfers"]:
            t["state"] = "canceled"
        return found

    @app.middleware("http")
    async def fail_disbursements(request: Request, call_next: Any) -> Response:
        if state.fail_disbursements and request.url.path.startswith("/ops/v1/disbursements"):
            (status, code, message), state.fail_disbursements = state.fail_disbursements, None
            return error(status, code, message)
        response: Response = await call_next(request)
        return response

    @app.get("/ops/v1/disbursements")
    async def list_disbursements(
        status: str | None = None, network: str | None = None, limit: int = 50
    ) -> Any:
        found = [
            d
            for d in reversed(state.disbursements)
            if status in (None, d["status"]) and network in (None, d["network"])
        ]
        return {"object": "list", "data": found[:limit], "has_more": False}

    @app.post("/ops/v1/disbursements/plan")
    async def plan_disbursements(request: Request) -> Any:
        """As the gateway: per network, the pending approved ones of one kind (refunds
        first) not yet carried, into one round, while no round of that network is open."""
        network = (await request.json()).get("network")
        made = []
        for name in [network] if network else ["ethereum", "bsc", "tron"]:
            if any(b["network"] == name and b["status"] not in FINISHED for b in state.batches):
                continue
            waiting = [
                d
                for d in state.disbursements
                if d["network"] == name
                and d["status"] == "pending"
                and d["transfer_id"] is None
                and d["approved"]
            ]
            if not waiting:
                continue
            kind = "refund" if any(d["object"] == "refund" for d in waiting) else "payout"
            carried = [d for d in waiting if d["object"] == kind]
            transfers = [
                transfer(
                    seq=n,
                    purpose=kind,
                    network=name,
                    destination_address=d["destination_address"],
                    amount_base_units=d["amount_base_units"],
                    reference=d["id"],
                )
                for n, d in enumerate(carried)
            ]
            for d, t in zip(carried, transfers, strict=True):
                d["transfer_id"] = t["id"]
            made.append(
                state.add(
                    network=name, kind=kind, transfers=transfers, transfer_count=len(transfers)
                )
            )
        return {"object": "list", "data": made, "has_more": False}

    @app.post("/ops/v1/disbursements/{disbursement_id}/approve")
    async def approve(disbursement_id: str, request: Request) -> Any:
        actor = request.headers.get("ops-actor")
        if not actor:
            return error(
                400,
                "parameter_missing",
                "An approval needs the approving admin in the Ops-Actor header.",
                "Ops-Actor",
            )
        found = next((d for d in state.disbursements if d["id"] == disbursement_id), None)
        if found is None:
            return error(404, "resource_missing", f"No such refund or payout: {disbursement_id!r}")
        if not found["requires_approval"]:
            return error(
                409,
                "approval_not_required",
                f"{disbursement_id} is within its merchant's limit and needs no approval",
                "id",
            )
        if found["status"] != "pending":
            return error(
                409,
                "invalid_state",
                f"{disbursement_id} is {found['status']}; only a pending one is approved",
            )
        if any(a["by"] == actor for a in found["approvals"]):
            return error(
                409,
                "already_approved",
                f"{actor} already approved {disbursement_id}: the second approval must come "
                "from another admin",
                "id",
            )
        if len(found["approvals"]) < 2:
            found["approvals"].append({"by": actor, "at": "2026-12-07T19:00:00+00:00"})
        found["approved"] = len(found["approvals"]) >= 2
        return found

    return app


def transfer(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": new_id("ot"),
        "object": "outgoing_transfer",
        "seq": 1,
        "purpose": "sweep",
        "state": "planned",
        "network": "ethereum",
        "source_address": DEPOSIT,
        "source_path": "m/44'/60'/0'/0/7",
        "destination_address": TREASURY,
        "asset": "USDT",
        "token_contract": "0x" + "dac1" * 10,
        "decimals": 6,
        "amount_base_units": "1234500000",
        "depends_on": None,
        "tx_hash": None,
        "fee_paid_base_units": None,
        "failure_reason": None,
        "block_number": None,
    }
    return {**body, **overrides}


def batch(network: str = "ethereum", **overrides: Any) -> dict[str, Any]:
    topup = transfer(
        seq=0,
        purpose="fee_topup",
        network=network,
        source_address=FEE_WALLET,
        destination_address=DEPOSIT,
        asset="ETH",
        token_contract=None,
        decimals=18,
        amount_base_units="1250000000000000",
    )
    sweep = transfer(network=network, depends_on=topup["id"])
    body: dict[str, Any] = {
        "id": new_id("ob"),
        "object": "outgoing_batch",
        "kind": "sweep",
        "network": network,
        "status": "planned",
        "request_digest": "sha256:" + "5d" * 32,
        "created_by": "usr_admin",
        "created_at": "2026-12-07T18:00:00+00:00",
        "issued_at": None,
        "signed_at": None,
        "canceled_at": None,
        "transfer_count": 2,
        "plan_summary": {
            "network": network,
            "kind": "sweep",
            "addresses": 1,
            "totals": {"USDT": "1234500000"},
            "network_cost_base_units": "12500000000000000",
            "network_cost_max_base_units": "20000000000000000",
            "native_symbol": "ETH",
            "native_price_usd": "3000",
            "network_cost_usd": "37.5",
            "skipped": {"dust": 3},
            "notes": [],
        },
        "transfers": [topup, sweep],
    }
    return {**body, **overrides}


def disbursement(kind: str = "refund", **overrides: Any) -> dict[str, Any]:
    """A refund or payout as `GET /ops/v1/disbursements` lists it (the gateway's
    `present_for_ops`: the public object, its merchant, transfer and approvals)."""
    requires = bool(overrides.get("requires_approval", False))
    body: dict[str, Any] = {
        "id": new_id("re" if kind == "refund" else "po"),
        "object": kind,
        "status": "pending",
        "network": "ethereum",
        "asset": "USDT",
        "token_contract": "0x" + "dac1" * 10,
        "decimals": 6,
        "amount": "25.5",
        "amount_base_units": "25500000",
        "destination_address": CUSTOMER,
        "tx_hash": None,
        "network_fee": {
            "amount": None,
            "amount_base_units": None,
            "asset": "ETH",
            "paid_by": "merchant",
        },
        "failure_reason": None,
        "requires_approval": requires,
        "source": None,
        "created_at": "2026-12-07T18:30:00Z",
        "metadata": {},
        "merchant": new_id("mer"),
        "transfer_id": None,
        "approved": not requires,
        "approvals": [],
    }
    if kind == "refund":
        body |= {"payment_intent": new_id("pi"), "reason": "requested_by_customer"}
    else:
        body |= {"payment_intent": None, "description": "Supplier invoice 2026-114"}
    return {**body, **overrides}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def ops_gateway() -> Iterator[OpsGateway]:
    """The stand-in, served by uvicorn on its own thread and loop (a separate service)."""
    state = OpsGateway()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(ops_app(state), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.025)
    assert server.started, "the ops API stand-in did not start"
    state.url = f"http://127.0.0.1:{port}"
    yield state
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def dashboard_config(
    dashboard_config: DashboardConfig, ops_gateway: OpsGateway, request: pytest.FixtureRequest
) -> DashboardConfig:
    """The suite's config pointed at the stand-in, with its ops token (a test overrides
    with `@pytest.mark.parametrize("dashboard_config", [{…}], indirect=True)`)."""
    values: dict[str, Any] = {
        "gateway_url": ops_gateway.url,
        "gateway_ops_token": SecretStr(OPS_TOKEN),
    }
    values.update(getattr(request, "param", {}))
    return dashboard_config.model_copy(update=values)


@pytest.fixture
async def admin(signed_in: SignedIn) -> httpx.AsyncClient:
    return await signed_in("admin")


@pytest.fixture
async def viewer(signed_in: SignedIn) -> httpx.AsyncClient:
    return await signed_in("viewer")


def form_fields(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to `action` (as a browser would send them)."""
    start = html.index(f'action="{action}"')
    form = html[start : html.index("</form>", start)]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
