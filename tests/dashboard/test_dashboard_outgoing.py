"""The Outgoing page: signing rounds read and driven through the gateway's ops API.

The ops API is a separate service (the gateway); here it is ops_standin.py's small real
HTTP server on a local port that speaks spec-14's paths and shapes and keeps every
request it got, so the tests see exactly what crossed the wire: the bearer token, the
idempotency key, and the signed file's bytes. Viewers see the rounds without any form
and are refused (403) whatever they post; admins plan, download the request (the exact
bytes, as an attachment), upload the signed file (forwarded unchanged; a refusal is
shown with the gateway's reason) and cancel. Without an ops token the page says funds
out is off.
"""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal, localcontext

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from stablegate_common.core.assets import MAINNET, AssetRegistry
from stablegate_common.core.ids import new_id
from stablegate_dashboard.outgoing.service import base_units, batch_view, quantity, usd
from stablegate_dashboard.web.context import DashboardContext
from tests.dashboard.ops_standin import (
    DEPOSIT,
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
from tests.dashboard.support import csrf_of, page_token

__all__ = ["admin", "dashboard_config", "ops_gateway", "viewer"]  # the stand-in's fixtures

# -- not configured, not reachable ------------------------------------------------------


@pytest.mark.parametrize("dashboard_config", [{"gateway_ops_token": SecretStr("")}], indirect=True)
async def test_without_an_ops_token_the_page_says_funds_out_is_not_configured(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    ops_gateway.add()
    page = await admin.get("/outgoing")
    assert page.status_code == 200
    assert "Funds out is not configured" in page.text
    assert "DASHBOARD_GATEWAY_OPS_TOKEN is not set" in page.text
    assert 'data-action="plan-sweep"' not in page.text
    assert ops_gateway.received == []

    token = csrf_of(page.text)
    refused = await admin.post("/outgoing/sweeps", data={"csrf_token": token})
    assert refused.status_code == 503
    assert "not configured" in refused.text
    assert ops_gateway.received == []


async def test_the_nav_links_the_outgoing_page(admin: httpx.AsyncClient) -> None:
    page = await admin.get("/")
    assert 'href="/outgoing"' in page.text


async def test_an_ops_api_that_is_off_on_the_gateway_is_named(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    ops_gateway.off = True
    page = await admin.get("/outgoing")
    assert page.status_code == 200
    assert "set GATEWAY_OPS_TOKEN on the gateway" in page.text


@pytest.mark.parametrize(
    "dashboard_config", [{"gateway_ops_token": SecretStr("a-wrong-token")}], indirect=True
)
async def test_a_wrong_ops_token_is_named(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    page = await admin.get("/outgoing")
    assert "refused the dashboard&#39;s ops token" in page.text
    [call] = ops_gateway.received
    assert call.headers["authorization"] == "Bearer a-wrong-token"


# -- what everyone sees -----------------------------------------------------------------


async def test_the_list_shows_each_round_newest_first_with_totals_and_cost(
    viewer: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    older = ops_gateway.add(network="tron", status="completed")
    older["plan_summary"].update(
        native_symbol="TRX",
        network_cost_base_units="27345000",
        native_price_usd=None,
        network_cost_usd=None,
        totals={"USDT": "50000000"},
    )
    newer = ops_gateway.add(network="ethereum", status="awaiting_signature")

    page = await viewer.get("/outgoing")

    assert page.status_code == 200
    html = page.text
    assert html.index(newer["id"]) < html.index(older["id"])
    [call] = ops_gateway.received
    assert call.path == "/ops/v1/outgoing/batches"
    assert call.query == {"limit": "20"}
    assert call.headers["authorization"] == f"Bearer {OPS_TOKEN}"
    row = html[html.index(f'data-batch-id="{newer["id"]}"') :]
    row = row[: row.index("</tr>")]
    assert "Awaiting signature" in row
    assert "1,234.50" in row
    assert "USDT" in row
    assert "0.0125" in row
    assert "ETH" in row
    assert "$37.50" in row
    assert "$3,000" in row
    assert "from 1 address" in row
    tron = html[html.index(f'data-batch-id="{older["id"]}"') :]
    tron = tron[: tron.index("</tr>")]
    assert "27.345" in tron
    assert "TRX" in tron
    assert "USD unknown" in tron
    assert "Completed" in tron


async def test_the_list_pages_through_every_round_once(
    viewer: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    made = [ops_gateway.add()["id"] for _ in range(23)]
    seen: list[str] = []
    path = "/outgoing"
    for _ in range(5):
        html = (await viewer.get(path)).text
        seen += re.findall(r'data-batch-id="(ob_[0-9A-Z]+)"', html)
        older = re.search(r'href="(/outgoing\?starting_after=ob_[0-9A-Z]+)">Older', html)
        if older is None:
            break
        path = older.group(1)
    assert seen == list(reversed(made))
    assert [c.query for c in ops_gateway.received] == [
        {"limit": "20"},
        {"limit": "20", "starting_after": made[3]},
    ]


async def test_the_batch_page_shows_every_transfer(
    viewer: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    shown = ops_gateway.add(status="failed")
    topup, sweep = shown["transfers"]
    topup.update(state="confirmed", tx_hash="0x" + "c0" * 32, fee_paid_base_units="21000000000000")
    sweep.update(
        state="failed",
        tx_hash=TX_HASH,
        fee_paid_base_units="45123000000000",
        failure_reason="reverted on chain: <transfer amount exceeds balance>",
    )

    page = await viewer.get(f"/outgoing/{shown['id']}")

    assert page.status_code == 200
    html = page.text
    assert [r for r in ops_gateway.received if r.path.endswith(shown["id"])]
    for t in (topup, sweep):
        row = html[html.index(f'data-transfer-id="{t["id"]}"') :]
        row = row[: row.index("</tr>")]
        assert f'title="{t["source_address"]}"' in row
        assert f'title="{t["destination_address"]}"' in row
        assert f'title="{t["tx_hash"]}"' in row
        assert "<a" not in row  # the hash links to nothing external (nor anything)
    sweep_row = html[html.index(f'data-transfer-id="{sweep["id"]}"') :]
    sweep_row = sweep_row[: sweep_row.index("</tr>")]
    assert "Sweep" in sweep_row
    assert "Failed" in sweep_row
    assert "1,234.50" in sweep_row
    assert "USDT" in sweep_row
    assert "0.000045123" in sweep_row  # fee paid, in ETH
    assert "&lt;transfer amount exceeds balance&gt;" in sweep_row  # escaped, as text
    topup_row = html[html.index(f'data-transfer-id="{topup["id"]}"') :]
    assert "Fee topup" in topup_row[: topup_row.index("</tr>")]
    assert "0.00125" in topup_row[: topup_row.index("</tr>")]
    assert "sha256:" + "5d" * 32 in html
    assert "3 · dust" in html


async def test_an_unknown_or_malformed_batch_id_is_a_404(
    viewer: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    assert (await viewer.get(f"/outgoing/{new_id('ob')}")).status_code == 404
    assert (await viewer.get("/outgoing/ob_..%2F..%2Fv1")).status_code == 404
    assert (await viewer.get("/outgoing/not-a-batch")).status_code == 404
    assert len(ops_gateway.received) == 1  # only the well-formed id was asked for


# -- viewers look, never act --------------------------------------------------------------

ACTION_MARKERS = ("plan-sweep", "upload-signed", "download-request", "cancel-batch")


async def test_a_viewer_sees_no_form_and_every_action_is_refused(
    viewer: httpx.AsyncClient, admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    shown = ops_gateway.add()
    for path in ("/outgoing", f"/outgoing/{shown['id']}"):
        seen_by_viewer = (await viewer.get(path)).text
        seen_by_admin = (await admin.get(path)).text
        for marker in ACTION_MARKERS:
            assert f'data-action="{marker}"' not in seen_by_viewer
        assert any(f'data-action="{m}"' in seen_by_admin for m in ACTION_MARKERS)
    token = await page_token(viewer, "/outgoing")
    ops_gateway.received.clear()

    actions = [
        viewer.post("/outgoing/sweeps", data={"csrf_token": token, "network": "tron"}),
        viewer.post(f"/outgoing/{shown['id']}/request", data={"csrf_token": token}),
        viewer.post(f"/outgoing/{shown['id']}/cancel", data={"csrf_token": token}),
        viewer.post(
            "/outgoing/signed",
            data={"csrf_token": token},
            files={"signed_file": ("SIGNED.json", b'{"request_id": "x"}', "application/json")},
        ),
    ]
    for response in await asyncio.gather(*actions):
        assert response.status_code == 403
        assert "viewer" in response.text
    assert ops_gateway.received == []


@pytest.mark.parametrize("token", [None, "forged-token"])
async def test_an_admin_form_without_the_session_token_is_refused(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway, token: str | None
) -> None:
    shown = ops_gateway.add()
    data = {} if token is None else {"csrf_token": token}
    for path in ("/outgoing/sweeps", f"/outgoing/{shown['id']}/cancel", "/outgoing/signed"):
        assert (await admin.post(path, data=data)).status_code == 403
    assert ops_gateway.posts() == []
    assert shown["status"] == "planned"


# -- admins act -------------------------------------------------------------------------


@pytest.mark.parametrize("network", ["tron", ""])
async def test_an_admin_plans_a_sweep(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway, network: str
) -> None:
    html = (await admin.get("/outgoing")).text
    fields = form_fields(html, "/outgoing/sweeps")

    response = await admin.post("/outgoing/sweeps", data={**fields, "network": network})

    assert response.status_code == 303
    [sent] = ops_gateway.posts()
    assert sent.path == "/ops/v1/outgoing/sweeps"
    assert json.loads(sent.body) == {"network": network or None}
    assert sent.headers["authorization"] == f"Bearer {OPS_TOKEN}"
    assert sent.headers["idempotency-key"] == f"dashboard-outgoing-sweep-{fields['action_key']}"
    if network:  # one batch: straight to it
        [made] = ops_gateway.batches
        assert response.headers["location"] == f"/outgoing/{made['id']}?notice=sweep_planned"
    else:
        assert len(ops_gateway.batches) == 3
        assert response.headers["location"] == "/outgoing?notice=sweep_planned"
    shown = await admin.get(response.headers["location"])
    assert "A sweep was planned" in shown.text


async def test_a_sweep_on_an_unknown_network_is_refused_before_the_gateway(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    token = await page_token(admin, "/outgoing")
    response = await admin.post("/outgoing/sweeps", data={"csrf_token": token, "network": "btc"})
    assert response.status_code == 400
    assert "network must be one of" in response.text
    assert ops_gateway.posts() == []


async def test_an_admin_downloads_the_signing_request_byte_for_byte(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    shown = ops_gateway.add()
    path = f"/outgoing/{shown['id']}/request"
    fields = form_fields((await admin.get(f"/outgoing/{shown['id']}")).text, path)

    response = await admin.post(path, data=fields)

    assert response.status_code == 200
    assert response.content == ops_gateway.documents[shown["id"]]
    assert response.headers["content-type"].startswith("application/json")
    assert (
        response.headers["content-disposition"]
        == f'attachment; filename="{shown["id"]}.request.json"'
    )
    [sent] = ops_gateway.posts()
    assert sent.path == f"/ops/v1/outgoing/batches/{shown['id']}/issue"
    assert sent.headers["idempotency-key"].startswith("dashboard-outgoing-issue-")
    again = await admin.post(path, data=fields)  # issuing twice returns the same bytes
    assert again.content == response.content
    page = await admin.get(f"/outgoing/{shown['id']}")
    assert "Awaiting signature" in page.text


async def test_a_refused_download_says_why(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    shown = ops_gateway.add(status="broadcasting")
    token = await page_token(admin, f"/outgoing/{shown['id']}")
    response = await admin.post(f"/outgoing/{shown['id']}/request", data={"csrf_token": token})
    assert response.status_code == 422
    assert "content-disposition" not in response.headers
    assert f"The gateway refused: batch {shown['id']} is broadcasting" in response.text


async def test_an_admin_uploads_the_signed_file_unchanged(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    shown = ops_gateway.add(status="awaiting_signature")
    html = (await admin.get(f"/outgoing/{shown['id']}")).text
    fields = form_fields(html, "/outgoing/signed")
    assert fields["batch_id"] == shown["id"]
    signed = (
        '{{"request_id": "{}",\r\n  "signatures": ["0x\u00e9"], "pad": "{}"}}\n'.format(
            shown["id"], " " * 3000
        )
    ).encode()

    response = await admin.post(
        "/outgoing/signed",
        data=fields,
        files={"signed_file": ("SIGNED.json", signed, "application/octet-stream")},
    )

    assert response.status_code == 303, response.text[:400]
    assert response.headers["location"] == f"/outgoing/{shown['id']}?notice=signed_accepted"
    [sent] = ops_gateway.posts()
    assert sent.path == "/ops/v1/outgoing/signed_responses"
    assert sent.body == signed
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["authorization"] == f"Bearer {OPS_TOKEN}"
    assert sent.headers["idempotency-key"].startswith("dashboard-outgoing-signed-")
    page = await admin.get(response.headers["location"])
    assert "The signed file was accepted" in page.text
    assert f'title="{TX_HASH}"' in page.text


async def test_a_refused_signed_file_shows_the_gateways_reason(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    shown = ops_gateway.add(status="awaiting_signature")
    reason = (
        f"transaction {shown['transfers'][1]['id']}: the signature recovers to "
        f"0x{'66' * 20}, not the source address {DEPOSIT} <changed>"
    )
    ops_gateway.reject_signed = reason
    for origin in ("/outgoing", f"/outgoing/{shown['id']}"):
        fields = form_fields((await admin.get(origin)).text, "/outgoing/signed")
        ops_gateway.reject_signed = reason
        response = await admin.post(
            "/outgoing/signed",
            data=fields,
            files={"signed_file": ("SIGNED.json", b'{"request_id": "x"}', "application/json")},
        )
        assert response.status_code == 422
        shown_reason = reason.replace("<", "&lt;").replace(">", "&gt;")
        assert f"The gateway refused: {shown_reason}" in response.text
        assert 'data-outgoing="refused"' in response.text
    assert shown["status"] == "awaiting_signature"


async def test_an_empty_upload_is_refused_before_the_gateway(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    fields = form_fields((await admin.get("/outgoing")).text, "/outgoing/signed")
    response = await admin.post(
        "/outgoing/signed",
        data=fields,
        files={"signed_file": ("SIGNED.json", b"", "application/json")},
    )
    assert response.status_code == 400
    assert "Choose the signed file" in response.text
    assert ops_gateway.posts() == []


async def test_an_admin_cancels_a_batch_after_confirming(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway
) -> None:
    shown = ops_gateway.add(status="awaiting_signature")
    html = (await admin.get(f"/outgoing/{shown['id']}")).text
    path = f"/outgoing/{shown['id']}/cancel"
    form = html[html.index(f'action="{path}"') :]
    assert 'data-confirm="Cancel this batch?' in form[: form.index(">")]

    response = await admin.post(path, data=form_fields(html, path))

    assert response.status_code == 303
    assert response.headers["location"] == f"/outgoing/{shown['id']}?notice=batch_canceled"
    [sent] = ops_gateway.posts()
    assert sent.path == f"/ops/v1/outgoing/batches/{shown['id']}/cancel"
    assert sent.headers["idempotency-key"].startswith("dashboard-outgoing-cancel-")
    page = (await admin.get(response.headers["location"])).text
    assert "The batch was canceled" in page
    assert 'data-action="cancel-batch"' not in page  # nothing left to cancel
    assert 'data-action="download-request"' not in page


async def test_a_refused_cancel_says_why(admin: httpx.AsyncClient, ops_gateway: OpsGateway) -> None:
    shown = ops_gateway.add(status="completed")
    token = await page_token(admin, f"/outgoing/{shown['id']}")
    response = await admin.post(f"/outgoing/{shown['id']}/cancel", data={"csrf_token": token})
    assert response.status_code == 422
    assert "nothing to cancel" in response.text


async def test_an_unreachable_gateway_changes_nothing_and_says_so(
    admin: httpx.AsyncClient, ops_gateway: OpsGateway, dashboard_ctx: DashboardContext
) -> None:
    shown = ops_gateway.add()
    token = await page_token(admin, f"/outgoing/{shown['id']}")
    # The gateway goes away: the dashboard's ops client now reaches a port nobody serves.
    await dashboard_ctx.ops.close()
    dashboard_ctx.ops.base_url = f"http://127.0.0.1:{free_port()}"
    response = await admin.post(f"/outgoing/{shown['id']}/cancel", data={"csrf_token": token})
    assert response.status_code == 503
    assert "did not answer" in response.text
    assert shown["status"] == "planned"


# -- the pure view model ----------------------------------------------------------------

REGISTRY = AssetRegistry.from_mapping(MAINNET)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0),
        ("1234500000", 1_234_500_000),
        (7, 7),
        (
            "115792089237316195423570985008687907853269984665640564039457584007913129639935",
            2**256 - 1,
        ),
        ("-1", None),
        ("1.5", None),
        ("1e6", None),
        ("", None),
        (" 1", None),
        ("١٢", None),  # Arabic-Indic digits are digits to str.isdigit, not base units
        (1.5, None),
        (True, None),
        (None, None),
    ],
)
def test_base_units_accept_digit_strings_only(raw: object, expected: int | None) -> None:
    assert base_units(raw) == expected


@pytest.mark.parametrize(
    ("raw", "decimals", "text"),
    [
        ("1234500000", 6, "1,234.50"),
        ("12500000000000000", 18, "0.0125"),
        ("1", 18, "0.000000000000000001"),
        ("27345000", 6, "27.345"),
        ("5", None, "5"),
        ("bad", 6, "—"),
    ],
)
def test_quantities_read_as_people_write_them(raw: str, decimals: int | None, text: str) -> None:
    assert quantity(raw, decimals, "X").text == text


@given(st.integers(min_value=0, max_value=2**256 - 1), st.integers(min_value=0, max_value=30))
def test_a_quantity_never_loses_a_base_unit(units: int, decimals: int) -> None:
    text = quantity(str(units), decimals, "X").text
    with localcontext() as exact:
        exact.prec = 200
        assert Decimal(text.replace(",", "")).scaleb(decimals) == units


@pytest.mark.parametrize(
    ("raw", "text"),
    [("37.5", "$37.50"), ("0.004", "$0.00"), ("0.005", "$0.01"), ("1234567.891", "$1,234,567.89")],
)
def test_usd_costs_show_cents(raw: str, text: str) -> None:
    assert usd(Decimal(raw)) == text


def test_a_batch_with_odd_fields_still_renders_what_it_can() -> None:
    view = batch_view(
        {"id": "ob_x", "network": "tron", "status": "planned", "plan_summary": "nonsense"},
        REGISTRY,
    )
    assert view.totals == []
    assert view.cost.estimated.text == "—"
    assert view.cost.estimated.unit == "TRX"
    assert view.cost.usd is None
    assert view.transfer_count is None
    assert view.can_issue
    assert view.can_cancel
