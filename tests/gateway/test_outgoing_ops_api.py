"""The ops API of funds out over the in-process app: off (404) without a token, 401 with a
wrong one, and a whole round (list, show, issue, accept, cancel) with the right one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from stablegate_gateway.context import GatewayContext
from stablegate_signer import documents
from tests.gateway.outgoing_support import evm_plan, make_batch, signer, snapshot, tron_plan

TOKEN = "ops-token-0123456789abcdef0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ON = [{"outgoing": {"ops_token": TOKEN}}]


@pytest.fixture
def gateway_settings(request: pytest.FixtureRequest, gateway_settings_factory: Any) -> Any:
    settings = gateway_settings_factory()
    outgoing = getattr(request, "param", {}).get("outgoing")
    if outgoing is not None:
        settings.outgoing = type(settings.outgoing)(**outgoing)
    return settings


async def test_the_ops_api_is_absent_without_a_token(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext
) -> None:
    batch_id = await make_batch(gateway_ctx, evm_plan())
    for method, path in [
        ("GET", "/ops/v1/outgoing/batches"),
        ("GET", f"/ops/v1/outgoing/batches/{batch_id}"),
        ("POST", f"/ops/v1/outgoing/batches/{batch_id}/issue"),
        ("POST", "/ops/v1/outgoing/signed_responses"),
    ]:
        response = await api.request(method, path, headers=AUTH)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "resource_missing"


@pytest.mark.parametrize("gateway_settings", ON, indirect=True)
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}]
)
async def test_a_missing_or_wrong_token_is_refused(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await api.get("/ops/v1/outgoing/batches", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_ops_token"


@pytest.mark.parametrize("gateway_settings", ON, indirect=True)
async def test_a_round_through_the_api(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    first = await make_batch(gateway_ctx, tron_plan())
    batch_id = await make_batch(gateway_ctx, evm_plan())
    listed = (await api.get("/ops/v1/outgoing/batches", headers=AUTH)).json()
    assert {b["id"] for b in listed["data"]} == {first, batch_id}
    assert {b["status"] for b in listed["data"]} == {"planned"}
    page = (await api.get("/ops/v1/outgoing/batches?limit=1", headers=AUTH)).json()
    assert page["has_more"] is True
    rest = await api.get(
        f"/ops/v1/outgoing/batches?limit=1&starting_after={page['data'][0]['id']}", headers=AUTH
    )
    assert [b["id"] for b in page["data"] + rest.json()["data"]] == [
        b["id"] for b in listed["data"]
    ]

    issued = await api.post(f"/ops/v1/outgoing/batches/{batch_id}/issue", headers=AUTH)
    assert issued.status_code == 200
    assert "attachment" in issued.headers["content-disposition"]
    again = await api.post(f"/ops/v1/outgoing/batches/{batch_id}/issue", headers=AUTH)
    assert again.content == issued.content

    request = documents.load_request(issued.content)
    signed = documents.dump(signer(tmp_path).sign(request)).encode()
    accepted = await api.post("/ops/v1/outgoing/signed_responses", content=signed, headers=AUTH)
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "signed"
    assert [t["state"] for t in body["transfers"]] == ["signed", "signed"]
    assert all(t["tx_hash"] for t in body["transfers"])

    shown = (await api.get(f"/ops/v1/outgoing/batches/{batch_id}", headers=AUTH)).json()
    assert shown["transfers"][1]["depends_on"] == shown["transfers"][0]["id"]
    assert shown["transfers"][1]["amount_base_units"] == "25000000"

    canceled = await api.post(f"/ops/v1/outgoing/batches/{batch_id}/cancel", headers=AUTH)
    assert canceled.status_code == 200
    # Signed bytes exist: presented as canceled, flagged canceling until unminable.
    assert canceled.json()["status"] == "canceling"
    assert [(t["state"], t["canceling"]) for t in canceled.json()["transfers"]] == [
        ("canceled", True),
        ("canceled", True),
    ]


@pytest.mark.parametrize("gateway_settings", ON, indirect=True)
async def test_a_refused_file_is_422_and_changes_nothing(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    batch_id = await make_batch(gateway_ctx, evm_plan())
    issued = await api.post(f"/ops/v1/outgoing/batches/{batch_id}/issue", headers=AUTH)
    signed = json.loads(
        documents.dump(signer(tmp_path).sign(documents.load_request(issued.content)))
    )
    signed["request_digest"] = "sha256:" + "0" * 64
    before = await snapshot(gateway_ctx)
    response = await api.post(
        "/ops/v1/outgoing/signed_responses", content=json.dumps(signed), headers=AUTH
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "signed_response_rejected"
    assert error["param"] == "request_digest"
    assert "digest" in error["message"]
    assert await snapshot(gateway_ctx) == before


@pytest.mark.parametrize("gateway_settings", ON, indirect=True)
async def test_unknown_batches_and_wrong_states_use_the_error_envelope(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext
) -> None:
    missing = await api.get("/ops/v1/outgoing/batches/ob_nope", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["param"] == "id"
    batch_id = await make_batch(gateway_ctx, evm_plan())
    assert (await api.post(f"/ops/v1/outgoing/batches/{batch_id}/cancel", headers=AUTH)).is_success
    again = await api.post(f"/ops/v1/outgoing/batches/{batch_id}/cancel", headers=AUTH)
    assert again.status_code == 200  # idempotent
    issue = await api.post(f"/ops/v1/outgoing/batches/{batch_id}/issue", headers=AUTH)
    assert issue.status_code == 409
    assert issue.json()["error"]["code"] == "invalid_state"


@pytest.mark.parametrize("gateway_settings", ON, indirect=True)
async def test_a_bad_cursor_names_it(api: httpx.AsyncClient) -> None:
    response = await api.get("/ops/v1/outgoing/batches?starting_after=ob_nope", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "starting_after"
    response = await api.get("/ops/v1/outgoing/batches?limit=0", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "limit"


@pytest.mark.parametrize("gateway_settings", ON, indirect=True)
async def test_a_sweep_of_an_unconfigured_network_names_the_setting(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext
) -> None:
    before = await snapshot(gateway_ctx)
    response = await api.post("/ops/v1/outgoing/sweeps", json={"network": "bsc"}, headers=AUTH)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "GATEWAY_TREASURY_ADDRESS_BSC" in error["message"]
    assert await snapshot(gateway_ctx) == before
    # Every network (the schedule's form): the unconfigured ones are passed over.
    response = await api.post("/ops/v1/outgoing/sweeps", json={"network": None}, headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {
        "object": "list",
        "data": [],
        "has_more": False,
        "url": "/ops/v1/outgoing/sweeps",
    }
