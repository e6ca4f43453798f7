"""Outgoing → "Refunds and payouts": every merchant's refunds and payouts, read and acted
on through the gateway's ops API (the stand-in of ops_standin.py, a real HTTP server).

Everyone sees the list: kind, id, merchant, the refund's intent (linked when the
dashboard has its page), amount, destination, status, approvals, transaction. Admins
approve one over its merchant's limit (the request names them in `Ops-Actor`; the same
admin twice gets the gateway's refusal, shown) and plan the pending ones now (the rounds
made then show in the list of signing rounds). Viewers see no form and are refused (403)
whatever they post. Whatever the gateway answers, the page shows a message, never a 500.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from stablegate_common.core.ids import new_id
from stablegate_common.db import Database
from stablegate_dashboard.disbursements.service import disbursement_row, is_disbursement_id
from stablegate_dashboard.users.models import OpsUser
from stablegate_dashboard.web.context import DashboardContext
from tests.dashboard.conftest import UserFactory
from tests.dashboard.ops_standin import (
    CUSTOMER,
    OPS_TOKEN,
    TX_HASH,
    OpsGateway,
    admin,
    dashboard_config,
    form_fields,
    free_port,
    ops_gateway,
    viewer,
)
from tests.dashboard.support import PASSWORD, deliver, page_token, sign_in
from tests.reconciler.factories import intent_event

__all__ = ["admin", "dashboard_config", "ops_gateway", "viewer"]  # the stand-in's fixtures

PAGE = "/outgoing/disbursements"


def row_of(html: str, item_id: str) -> str:
    start = html.index(f'data-disbursement-id="{item_id}"')
    return html[start : html.index("</tr>", start)]


async def user_id_of(db: Database, email: str) -> str:
    async with db.sessions() as session:
        found = await session.scalar(select(OpsUser.id).where(OpsUser.email == email))
    assert found is not None
    return found


@pytest.fixture
async def two_admins(
    dashboard_app: FastAPI, user_factory: UserFactory
) -> AsyncIterator[list[tuple[httpx.AsyncClient, str]]]:
    """Two admins signed in, each with their own client, and their emails."""
    made = []
    for _ in range(2):
        email = await user_factory("admin")
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=dashboard_app), base_url="http://dashboard"
        )
        assert (await sign_in(client, email, PASSWORD)).status_code == 303
        made.append((client, email))
    yield made
    for client, _ in made:
        await client.aclose()


# -- what everyone sees -----------------------------------------------------------------


async def test_the_list_shows_refunds_and_payouts_with_their_intent(
    viewer: httpx.AsyncClient, ops_gateway: OpsGateway, dashboard_db: Database
) -> None:
    known = intent_event(created=True)
    await deliver(dashboard_db, known)
    intent_id = known.data["intent_id"]
    refund = ops_gateway.add_disbursement(
        "refund", payment_intent=intent_id, reason="overpaid", requires_approval=True
    )
    refund["approvals"] = [{"by": "usr_someone", "at": "2026-12-07T18:40:00+00:00"}]
    elsewhere = ops_gateway.add_disbursement("refund", network="tron", asset="USDT")
    payout = ops_gateway.add_disbursement(
        "payout",
        status="succeeded",
        amount_base_units="1234500000",
        tx_hash=TX_HASH,
        transfer_id=new_id("ot"),
        network_fee={
            "amount": "0.000045123",
            "amount_base_units": "45123000000000",
            "asset": "ETH",
            "paid_by": "merchant",
        },
    )

    page = await viewer.get("/outgoing")
    assert f'href="{PAGE}"' in page.text  # the Outgoing page links it
    page = await viewer.get(PAGE)

    assert page.status_code == 200
    html = page.text
    [call] = [r for r in ops_gateway.received if r.path == "/ops/v1/disbursements"]
    assert call.query == {"limit": "100"}
    assert call.headers["authorization"] == f"Bearer {OPS_TOKEN}"
    assert html.index(payout["id"]) < html.index(elsewhere["id"]) < html.index(refund["id"])

    shown = row_of(html, refund["id"])
    assert "Refund" in shown
    assert "overpaid" in shown
    assert f'title="{refund["merchant"]}"' in shown
    assert f'href="/intents/{intent_id}"' in shown
    assert "25.50" in shown
    assert "USDT" in shown
    assert f'title="{CUSTOMER}"' in shown
    assert "Pending" in shown
    assert "1 of 2" in shown
    assert "usr_someone" in shown
    assert 'data-action="approve-disbursement"' not in shown  # a viewer's page

    unknown = row_of(html, elsewhere["id"])
    assert f'title="{elsewhere["payment_intent"]}"' in unknown
    assert "/intents/" not in unknown  # the dashboard has no page for that intent
    assert "not needed" in unknown
    assert "Tron" in unknown

    paid = row_of(html, payout["id"])
    assert "Payout" in paid
    assert "Supplier invoice 2026-114" in paid
    assert "Succeeded" in paid
    assert "1,234.50" in paid
    assert f'title="{TX_HASH}"' in paid
    assert "0.000045123" in paid
    assert "paid by merchant" in paid
    assert "/intents/" not in paid


async def test_filters_are_forwarded_and_unknown_ones_ignored(
    viewer: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    kept = ops_gateway.add_disbursement("payout", network="bsc")
    other = ops_gateway.add_disbursement("payout", network="tron")

    html = (await viewer.get(f"{PAGE}?status=pending&network=bsc")).text
    assert kept["id"] in html
    assert other["id"] not in html
    await viewer.get(f"{PAGE}?status=bogus&network=btc")

    calls = [r.query for r in ops_gateway.received if r.path == "/ops/v1/disbursements"]
    assert calls == [{"limit": "100", "status": "pending", "network": "bsc"}, {"limit": "100"}]


# -- viewers look, never act --------------------------------------------------------------


async def test_a_viewer_sees_no_button_and_every_post_is_refused(
    viewer: httpx.AsyncClient, admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    waiting = ops_gateway.add_disbursement("refund", requires_approval=True)
    seen_by_viewer = (await viewer.get(PAGE)).text
    seen_by_admin = (await admin.get(PAGE)).text
    for marker in ("plan-disbursements", "approve-disbursement"):
        assert f'data-action="{marker}"' not in seen_by_viewer
        assert f'data-action="{marker}"' in seen_by_admin
    assert "Your role is viewer" in seen_by_viewer
    token = await page_token(viewer, PAGE)
    ops_gateway.received.clear()

    refused = await asyncio.gather(
        viewer.post(f"{PAGE}/plan", data={"csrf_token": token, "network": ""}),
        viewer.post(f"{PAGE}/{waiting['id']}/approve", data={"csrf_token": token}),
    )

    for response in refused:
        assert response.status_code == 403
        assert "viewer" in response.text
    assert ops_gateway.received == []
    assert waiting["approvals"] == []


async def test_without_a_session_nothing_is_shown_or_sent(
    anonymous: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    waiting = ops_gateway.add_disbursement("refund", requires_approval=True)
    page = await anonymous.get(PAGE)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login")
    for path in (f"{PAGE}/plan", f"{PAGE}/{waiting['id']}/approve"):
        assert (await anonymous.post(path, data={"network": ""})).status_code == 303  # to the login
    assert ops_gateway.received == []


@pytest.mark.parametrize("token", [None, "forged-token"])
async def test_an_admin_form_without_the_session_token_is_refused(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway, token: str | None
) -> None:
    waiting = ops_gateway.add_disbursement("refund", requires_approval=True)
    data = {} if token is None else {"csrf_token": token}
    for path in (f"{PAGE}/plan", f"{PAGE}/{waiting['id']}/approve"):
        assert (await admin.post(path, data=data)).status_code == 403
    assert ops_gateway.posts() == []


# -- admins act -------------------------------------------------------------------------


async def test_two_admins_approve_and_the_same_admin_twice_is_refused(
    two_admins: list[tuple[httpx.AsyncClient, str]],
    ops_gateway: OpsGateway,
    dashboard_db: Database,
) -> None:
    waiting = ops_gateway.add_disbursement("payout", requires_approval=True)
    [(one, first), (other, second)] = two_admins
    action = f"{PAGE}/{waiting['id']}/approve"
    before = (await one.get(PAGE)).text
    stale = form_fields(before, action)  # the same form, as a second tab would keep it
    assert "0 of 2" in row_of(before, waiting["id"])

    response = await one.post(action, data=form_fields(before, action))

    assert response.status_code == 303
    assert response.headers["location"] == f"{PAGE}?notice=approval_recorded"
    [sent] = ops_gateway.posts()
    assert sent.path == f"/ops/v1/disbursements/{waiting['id']}/approve"
    assert sent.headers["ops-actor"] == await user_id_of(dashboard_db, first)
    assert sent.headers["authorization"] == f"Bearer {OPS_TOKEN}"
    assert sent.headers["idempotency-key"].startswith("dashboard-outgoing-approve-")
    after = (await one.get(response.headers["location"])).text
    assert "A second admin must approve" in after
    shown = row_of(after, waiting["id"])
    assert "1 of 2" in shown
    assert first in shown  # the approver by their email
    assert 'data-action="approve-disbursement"' not in shown
    assert "You approved it" in shown

    again = await one.post(action, data=stale)

    assert again.status_code == 422
    assert 'data-outgoing="refused"' in again.text
    assert "The gateway refused:" in again.text
    assert "the second approval must come from another admin" in again.text
    assert len(waiting["approvals"]) == 1

    html = (await other.get(PAGE)).text
    assert 'data-action="approve-disbursement"' in row_of(html, waiting["id"])
    done = await other.post(action, data=form_fields(html, action))

    assert done.headers["location"] == f"{PAGE}?notice=approval_complete"
    assert ops_gateway.posts()[-1].headers["ops-actor"] == await user_id_of(dashboard_db, second)
    shown = row_of((await other.get(PAGE)).text, waiting["id"])
    assert "2 of 2" in shown
    assert first in shown
    assert second in shown
    assert "<form" not in shown


async def test_approving_one_within_the_limit_shows_the_gateways_refusal(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    within = ops_gateway.add_disbursement("refund")
    token = await page_token(admin, PAGE)
    response = await admin.post(f"{PAGE}/{within['id']}/approve", data={"csrf_token": token})
    assert response.status_code == 422
    assert "needs no approval" in response.text
    assert 'data-disbursement-id="' in response.text  # the list is still shown


async def test_a_malformed_id_is_a_404_before_the_gateway(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    token = await page_token(admin, PAGE)
    ops_gateway.received.clear()
    for bad in ("ob_" + "A" * 24, "re_..%2F..%2Fplan", "nothing"):
        response = await admin.post(f"{PAGE}/{bad}/approve", data={"csrf_token": token})
        assert response.status_code == 404
    assert ops_gateway.received == []


@pytest.mark.parametrize("network", ["tron", ""])
async def test_an_admin_plans_refunds_and_payouts_now(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway, network: str
) -> None:
    refund = ops_gateway.add_disbursement("refund", network="tron")
    payout = ops_gateway.add_disbursement("payout", network="bsc")
    unapproved = ops_gateway.add_disbursement("refund", network="bsc", requires_approval=True)
    fields = form_fields((await admin.get(PAGE)).text, f"{PAGE}/plan")

    response = await admin.post(f"{PAGE}/plan", data={**fields, "network": network})

    assert response.status_code == 303
    [sent] = ops_gateway.posts()
    assert sent.path == "/ops/v1/disbursements/plan"
    assert json.loads(sent.body) == {"network": network or None}
    assert sent.headers["idempotency-key"] == (
        f"dashboard-outgoing-disbursements-{fields['action_key']}"
    )
    assert unapproved["transfer_id"] is None  # one approval short: not planned
    if network:  # one round: straight to it, with its transfers
        [made] = ops_gateway.batches
        assert made["kind"] == "refund"
        assert (
            response.headers["location"] == f"/outgoing/{made['id']}?notice=disbursements_planned"
        )
        page = (await admin.get(response.headers["location"])).text
        assert "Refunds and payouts were planned" in page
        assert f'data-transfer-id="{refund["transfer_id"]}"' in page
        assert 'data-action="download-request"' in page
        assert payout["transfer_id"] is None
    else:
        assert {(b["network"], b["kind"]) for b in ops_gateway.batches} == {
            ("tron", "refund"),
            ("bsc", "payout"),
        }
        assert response.headers["location"] == "/outgoing?notice=disbursements_planned"
        page = (await admin.get(response.headers["location"])).text
        assert "Refunds and payouts were planned" in page
        for made in ops_gateway.batches:  # in the list of signing rounds
            assert f'data-batch-id="{made["id"]}"' in page
    listed = row_of((await admin.get(PAGE)).text, refund["id"])
    assert "in a signing round" in listed


async def test_planning_with_nothing_ready_says_so(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    ops_gateway.add_disbursement("refund", requires_approval=True)
    fields = form_fields((await admin.get(PAGE)).text, f"{PAGE}/plan")
    response = await admin.post(f"{PAGE}/plan", data=fields)
    assert response.headers["location"] == f"{PAGE}?notice=disbursements_nothing"
    assert "Nothing was planned" in (await admin.get(response.headers["location"])).text
    assert ops_gateway.batches == []


async def test_a_plan_on_an_unknown_network_is_refused_before_the_gateway(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    token = await page_token(admin, PAGE)
    response = await admin.post(f"{PAGE}/plan", data={"csrf_token": token, "network": "btc"})
    assert response.status_code == 400
    assert "network must be one of" in response.text
    assert ops_gateway.posts() == []


# -- the gateway's errors are messages ---------------------------------------------------


async def test_an_unreadable_list_is_a_message(
    viewer: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    ops_gateway.fail_disbursements = (500, "api_error", "boom")
    page = await viewer.get(PAGE)
    assert page.status_code == 200
    assert 'data-outgoing="unreadable"' in page.text
    assert "the gateway failed (500)" in page.text

    ops_gateway.off = True
    page = await viewer.get(PAGE)
    assert page.status_code == 200
    assert "set GATEWAY_OPS_TOKEN on the gateway" in page.text


async def test_a_refused_plan_shows_the_gateways_reason(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    fields = form_fields((await admin.get(PAGE)).text, f"{PAGE}/plan")
    ops_gateway.fail_disbursements = (
        400,
        "disbursements_not_configured",
        "refunds and payouts on tron need GATEWAY_FEE_WALLET_ADDRESS_TRON <and a node>",
    )
    response = await admin.post(f"{PAGE}/plan", data={**fields, "network": "tron"})
    assert response.status_code == 422
    assert (
        "The gateway refused: refunds and payouts on tron need "
        "GATEWAY_FEE_WALLET_ADDRESS_TRON &lt;and a node&gt;"
    ) in response.text


async def test_an_unreachable_gateway_is_a_message(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway, dashboard_ctx: DashboardContext
) -> None:
    waiting = ops_gateway.add_disbursement("refund", requires_approval=True)
    token = await page_token(admin, PAGE)
    await dashboard_ctx.ops.close()
    dashboard_ctx.ops.base_url = f"http://127.0.0.1:{free_port()}"
    for path in (f"{PAGE}/plan", f"{PAGE}/{waiting['id']}/approve"):
        response = await admin.post(path, data={"csrf_token": token})
        assert response.status_code == 503
        assert "did not answer" in response.text
    page = await admin.get(PAGE)
    assert page.status_code == 200
    assert "did not answer" in page.text
    assert waiting["approvals"] == []


@pytest.mark.parametrize("dashboard_config", [{"gateway_ops_token": SecretStr("")}], indirect=True)
async def test_without_an_ops_token_the_page_says_so(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    page = await admin.get(PAGE)
    assert page.status_code == 200
    assert "Funds out is not configured" in page.text
    assert 'data-action="plan-disbursements"' not in page.text
    token = await page_token(admin, PAGE)
    response = await admin.post(f"{PAGE}/plan", data={"csrf_token": token})
    assert response.status_code == 503
    assert "not configured" in response.text
    assert ops_gateway.received == []


# -- the pure view model ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (new_id("re"), True),
        (new_id("po"), True),
        (new_id("ob"), False),
        (new_id("pi"), False),
        ("re_" + "." * 24, False),
        ("re_short", False),
        ("", False),
    ],
)
def test_only_refund_and_payout_ids_are_accepted(value: str, expected: bool) -> None:
    assert is_disbursement_id(value) is expected


@pytest.mark.parametrize(
    ("raw", "awaits"),
    [
        ({"status": "pending", "requires_approval": True, "approved": False}, True),
        ({"status": "pending", "requires_approval": True}, True),  # no flag: not approved
        ({"status": "pending", "requires_approval": True, "approved": "yes"}, True),
        ({"status": "pending", "requires_approval": True, "approved": True}, False),
        ({"status": "pending", "requires_approval": False}, False),
        ({"status": "canceled", "requires_approval": True, "approved": False}, False),
        ({"status": "pending", "requires_approval": "true", "approved": False}, False),
    ],
)
def test_an_approval_is_offered_only_where_the_gateway_wants_one(
    raw: dict[str, object], awaits: bool
) -> None:
    assert disbursement_row({"id": new_id("re"), **raw}).awaits_approval is awaits


def test_a_disbursement_with_odd_fields_still_renders_what_it_can() -> None:
    row = disbursement_row(
        {
            "id": "po_x",
            "amount_base_units": "12.5",
            "decimals": "six",
            "approvals": ["usr_a", {"by": 7}, {"by": "usr_b", "at": "not a time"}],
            "network_fee": "free",
        }
    )
    assert row.kind == "payout"
    assert row.amount.text == "—"
    assert [a.by for a in row.approvals] == ["usr_b"]
    assert row.approvals[0].at is None
    assert row.network_fee is None
    assert row.approvals_text == "1 of 2"
    assert re.fullmatch(r"—", row.status)
