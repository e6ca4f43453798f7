"""The Outgoing page in headless Chromium: the dashboard served over HTTP on a local port,
acting through the ops API stand-in of ops_standin.py (a real HTTP server).

An admin plans a sweep, downloads the signing request (the browser saves
`<batch>.request.json` with the gateway's exact bytes), uploads the signed file through
the file input, and cancels a batch only after saying yes to the confirmation; a viewer
sees the rounds and no form. On "Refunds and payouts" an admin approves (after the
confirmation) and plans a refund into a round; a viewer sees them and no form. No page
loads anything from elsewhere, raises a script error or trips the Content-Security-Policy.
Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from tests.dashboard.conftest import UserFactory
from tests.dashboard.ops_standin import (
    TX_HASH,
    OpsGateway,
    dashboard_config,
    free_port,
    ops_gateway,
)
from tests.dashboard.support import PASSWORD
from tests.fixtures.browser import BrowserPage, OpenPage

pytestmark = [pytest.mark.slow]
__all__ = ["dashboard_config", "ops_gateway"]  # the stand-in's fixtures, used here too


@pytest_asyncio.fixture
async def dashboard_url(dashboard_app: FastAPI) -> AsyncIterator[str]:
    """The dashboard app served by uvicorn on the test's loop (its DB pool lives there)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            dashboard_app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.025)
    assert server.started, "the dashboard did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, 10)


async def signed_in_page(
    url: str, open_page: OpenPage, user_factory: UserFactory, role: str
) -> BrowserPage:
    email = await user_factory(role)
    page = await open_page(f"{url}/login?next=/outgoing")
    await page.page.fill("#email", email)
    await page.page.fill("#password", PASSWORD)
    async with page.page.expect_navigation():
        await page.page.click("button[type=submit]")
    assert page.page.url == f"{url}/outgoing", await page.page.content()
    return page


def assert_stayed_local(page: BrowserPage) -> None:
    assert page.requests
    assert page.foreign_requests() == []
    assert page.errors == []
    assert page.console_errors == []


async def test_an_admin_runs_a_signing_round_in_the_browser(
    dashboard_url: str,
    open_page: OpenPage,
    user_factory: UserFactory,
    ops_gateway: OpsGateway,
    tmp_path: Path,
) -> None:
    page = await signed_in_page(dashboard_url, open_page, user_factory, "admin")
    await page.screenshots("dashboard-outgoing-empty")

    await page.page.select_option("#sweep-network", "tron")
    async with page.page.expect_navigation():
        await page.page.click("text=Plan a sweep now")
    [planned] = ops_gateway.batches
    assert page.page.url == f"{dashboard_url}/outgoing/{planned['id']}?notice=sweep_planned"
    assert await page.page.is_visible("text=A sweep was planned")

    async with page.page.expect_download() as downloading:
        await page.page.click("text=Download signing request")
    download = await downloading.value
    assert download.suggested_filename == f"{planned['id']}.request.json"
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    assert saved.read_bytes() == ops_gateway.documents[planned["id"]]

    await page.page.reload()
    signed = tmp_path / "SIGNED.json"
    signed.write_bytes(b'{"request_id": "%s", "signatures": []}\n' % planned["id"].encode())
    await page.page.set_input_files("#signed-file", str(signed))
    async with page.page.expect_navigation():
        await page.page.click("text=Upload signed file")
    assert await page.page.is_visible("text=The signed file was accepted")
    assert ops_gateway.posts()[-1].body == signed.read_bytes()
    assert await page.page.is_visible(f'[title="{TX_HASH}"] >> nth=0')
    await page.screenshots("dashboard-outgoing-batch")

    # Cancel asks first: saying no sends nothing, saying yes cancels.
    answers = iter([False, True])

    async def answer(dialog: object) -> None:
        if next(answers):
            await dialog.accept()  # type: ignore[attr-defined]
        else:
            await dialog.dismiss()  # type: ignore[attr-defined]

    page.page.on("dialog", answer)
    posts_before = len(ops_gateway.posts())
    await page.page.click("text=Cancel batch")
    await asyncio.sleep(0.3)
    assert len(ops_gateway.posts()) == posts_before
    async with page.page.expect_navigation():
        await page.page.click("text=Cancel batch")
    assert await page.page.is_visible("text=The batch was canceled")
    assert ops_gateway.posts()[-1].path.endswith(f"/{planned['id']}/cancel")

    await page.page.goto(f"{dashboard_url}/outgoing")
    await page.screenshots("dashboard-outgoing-list")
    assert_stayed_local(page)


async def test_a_viewer_sees_rounds_and_no_form_in_the_browser(
    dashboard_url: str, open_page: OpenPage, user_factory: UserFactory, ops_gateway: OpsGateway
) -> None:
    shown = ops_gateway.add(status="awaiting_signature")
    page = await signed_in_page(dashboard_url, open_page, user_factory, "viewer")
    assert await page.page.is_visible(f"a[href='/outgoing/{shown['id']}']")
    assert await page.page.locator("form[action^='/outgoing']").count() == 0
    await page.page.click(f"a[href='/outgoing/{shown['id']}']")
    await page.page.wait_for_url(f"{dashboard_url}/outgoing/{shown['id']}")
    assert await page.page.locator("form[action^='/outgoing']").count() == 0
    assert await page.page.is_visible("text=Awaiting signature")
    assert_stayed_local(page)


async def test_an_admin_approves_and_plans_a_refund_in_the_browser(
    dashboard_url: str, open_page: OpenPage, user_factory: UserFactory, ops_gateway: OpsGateway
) -> None:
    refund = ops_gateway.add_disbursement("refund", network="tron", requires_approval=True)
    refund["approvals"] = [{"by": "usr_another_admin", "at": "2026-12-07T18:40:00+00:00"}]
    page = await signed_in_page(dashboard_url, open_page, user_factory, "admin")
    async with page.page.expect_navigation():
        await page.page.click("a[href='/outgoing/disbursements']")
    assert await page.page.is_visible("text=1 of 2")
    await page.screenshots("dashboard-disbursements")

    async def accept(dialog: object) -> None:
        await dialog.accept()  # type: ignore[attr-defined]

    page.page.on("dialog", accept)  # Approve asks first
    async with page.page.expect_navigation():
        await page.page.click(f"[data-disbursement-id='{refund['id']}'] button:has-text('Approve')")
    assert await page.page.is_visible("text=two admins approved")
    assert await page.page.is_visible("text=2 of 2")
    assert refund["approved"] is True

    await page.page.select_option("#disbursement-network", "tron")
    async with page.page.expect_navigation():
        await page.page.click("text=Plan refunds and payouts now")
    [planned] = ops_gateway.batches
    assert page.page.url == (
        f"{dashboard_url}/outgoing/{planned['id']}?notice=disbursements_planned"
    )
    assert await page.page.is_visible("text=Download signing request")
    assert_stayed_local(page)


async def test_a_viewer_sees_refunds_and_payouts_and_no_form_in_the_browser(
    dashboard_url: str, open_page: OpenPage, user_factory: UserFactory, ops_gateway: OpsGateway
) -> None:
    shown = ops_gateway.add_disbursement("payout", requires_approval=True)
    page = await signed_in_page(dashboard_url, open_page, user_factory, "viewer")
    await page.page.goto(f"{dashboard_url}/outgoing/disbursements")
    assert await page.page.is_visible(f"[data-disbursement-id='{shown['id']}']")
    assert await page.page.locator("form[method='post'][action^='/outgoing']").count() == 0
    assert_stayed_local(page)
