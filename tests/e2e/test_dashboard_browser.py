"""The operations dashboard in headless Chromium, against the whole suite on anvil.

An ops user signs in, finds a paid intent by its transaction hash and reads its timeline;
new intents appear without a reload; a viewer cannot redeliver a webhook (no button, and
the POST is refused); a form without its CSRF token is refused; merchant HTML is shown as
text; no page fetches anything from outside the host. Screenshots of every page at phone
and desktop widths go to test-artifacts/browser/.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.dashboard.support import PASSWORD
from tests.e2e.conftest import RunningSuite, WebhookReceiver, _suite, create_user
from tests.e2e.test_ethereum_payment import create_intent, status_is, wait_for
from tests.fixtures.anvil import AnvilChain
from tests.fixtures.browser import BrowserPage, OpenPage

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

ADMIN = "ops-admin@stablegate.test"
VIEWER = "ops-viewer@stablegate.test"
XSS_REFERENCE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
PAGES = (
    ("overview", "/"),
    ("intents", "/intents"),
    ("transfers", "/transfers"),
    ("wallets", "/wallets"),
    ("reconciliation", "/reconciliation"),
    ("webhooks", "/webhooks"),
    ("system", "/system"),
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def suite(anvil: AnvilChain) -> AsyncIterator[RunningSuite]:
    """The suite, with the dashboard restarted knowing the gateway's URL, the merchant key
    it acts with (created by the suite) and the services to probe; two ops users."""
    async with _suite(anvil, "test_dashboard_browser") as running:
        others = ("gateway", "watcher-eth", "reconciler")
        running.suite.spec("dashboard").env.update(
            {
                "DASHBOARD_GATEWAY_URL": running.gateway,
                "DASHBOARD_GATEWAY_API_KEY": running.secret_key,
                "DASHBOARD_SERVICE_URLS": json.dumps({n: running.suite.url(n) for n in others}),
            }
        )
        running.suite.stop("dashboard")
        running.suite.start("dashboard")
        running.suite.wait_ready(names=["dashboard"])
        await create_user(running, ADMIN, "admin")
        await create_user(running, VIEWER, "viewer")
        yield running


async def signed_in(suite: RunningSuite, open_page: OpenPage, email: str) -> BrowserPage:
    page = await open_page(f"{suite.dashboard}/login")
    await page.page.fill("#email", email)
    await page.page.fill("#password", PASSWORD)
    async with page.page.expect_navigation():
        await page.page.click("button[type=submit]")
    assert page.page.url.rstrip("/") == suite.dashboard, await page.page.content()
    return page


def assert_stayed_local(page: BrowserPage) -> None:
    assert page.requests, "the page made requests"
    assert page.foreign_requests() == []
    assert page.errors == []
    assert page.console_errors == []  # nothing failed to load, nothing refused by the CSP


async def paid_intent(
    suite: RunningSuite, anvil: AnvilChain, **extra: Any
) -> tuple[dict[str, Any], str]:
    intent = await create_intent(suite, **extra)
    tx_hash = await anvil.transfer(anvil.usdt, intent["deposit_address"], 25_000_000)
    await anvil.mine(intent["confirmations_required"] - 1)
    await wait_for(lambda: status_is(suite, intent["id"], "paid"), what="paid")
    return intent, tx_hash


async def shown_in_dashboard(
    suite: RunningSuite, page: BrowserPage, intent_id: str, status: str
) -> None:
    """Wait until the dashboard's read model has the intent in `status` (over the page's
    own session, as the browser would ask)."""

    async def arrived() -> bool:
        response = await page.page.request.get(f"{suite.dashboard}/api/intents/{intent_id}")
        return response.ok and (await response.json())["status"] == status

    await wait_for(arrived, what=f"{intent_id} {status} in the dashboard")


async def test_an_ops_user_finds_an_intent_by_its_transaction_hash_and_sees_its_timeline(
    suite: RunningSuite, anvil: AnvilChain, open_page: OpenPage
) -> None:
    intent, tx_hash = await paid_intent(
        suite, anvil, reference=XSS_REFERENCE, metadata={"note": XSS_REFERENCE}
    )
    page = await signed_in(suite, open_page, ADMIN)
    await shown_in_dashboard(suite, page, intent["id"], "paid")

    await page.page.fill("#global-q", tx_hash)
    async with page.page.expect_navigation():
        await page.page.press("#global-q", "Enter")
    rows = page.page.locator("#intents-table tbody tr[data-intent-id]")
    assert await rows.count() == 1
    assert await rows.first.get_attribute("data-intent-id") == intent["id"]
    async with page.page.expect_navigation():
        await rows.first.locator("a").first.click()

    assert page.page.url.endswith(f"/intents/{intent['id']}")
    timeline = (await page.page.inner_text("#timeline")).lower()  # badges are capitalized
    assert timeline.index("paid") < timeline.index("awaiting payment")  # newest first
    assert await page.page.locator(f'[title^="{tx_hash}"]').count() == 1
    # The merchant's HTML is text on the page, and none of it ran.
    assert XSS_REFERENCE in await page.page.inner_text("main")
    assert await page.page.evaluate("window.__xss") is None
    await page.screenshots("dashboard-intent-detail")
    assert_stayed_local(page)


async def test_new_intents_appear_without_a_reload(
    suite: RunningSuite, open_page: OpenPage
) -> None:
    page = await signed_in(suite, open_page, VIEWER)
    await page.page.goto(f"{suite.dashboard}/intents")
    loaded = await page.page.evaluate("performance.timeOrigin")

    intent = await create_intent(suite, reference="live-order-1")
    row = page.page.locator(f'tr[data-intent-id="{intent["id"]}"]')
    await row.wait_for(timeout=30_000)

    assert "live-order-1" in await row.inner_text()
    assert await page.page.evaluate("performance.timeOrigin") == loaded, "the page reloaded"
    assert_stayed_local(page)


async def test_a_viewer_cannot_redeliver_a_webhook(
    suite: RunningSuite, anvil: AnvilChain, open_page: OpenPage
) -> None:
    page = await signed_in(suite, open_page, VIEWER)
    await page.page.goto(f"{suite.dashboard}/webhooks")

    assert await page.page.locator('[data-action="redeliver"]').count() == 0
    token = await page.page.get_attribute(
        'form[action="/logout"] input[name="csrf_token"]', "value"
    )
    refused = await page.page.request.post(
        f"{suite.dashboard}/webhooks/deliveries/whd_any/redeliver",
        form={"csrf_token": token or ""},
        max_redirects=0,
    )
    assert refused.status == 403
    assert "viewer" in await refused.text()


async def gateway_has_delivery_log(suite: RunningSuite) -> bool:
    async with suite.api() as api:
        endpoints = (await api.get("/v1/webhook_endpoints")).json()["data"]
        if not endpoints:
            return True
        probe = await api.get(f"/v1/webhook_endpoints/{endpoints[0]['id']}/deliveries")
    return probe.status_code != 404


async def test_an_admin_redelivers_a_failed_webhook(
    suite: RunningSuite, anvil: AnvilChain, open_page: OpenPage, webhook_receiver: WebhookReceiver
) -> None:
    async with suite.api() as api:
        created = await api.post("/v1/webhook_endpoints", json={"url": webhook_receiver.url})
    assert created.status_code == 200, created.text
    if not await gateway_has_delivery_log(suite):
        pytest.skip("the gateway has no delivery log API yet (GET …/deliveries answers 404)")
    webhook_receiver.fail_next = 1_000
    intent = await create_intent(suite, reference="hook-order")
    page = await signed_in(suite, open_page, ADMIN)

    async def failing_shown() -> bool:
        await page.page.goto(f"{suite.dashboard}/webhooks")
        return await page.page.locator('[data-action="redeliver"]').count() > 0

    await wait_for(failing_shown, timeout=60, what="a failing delivery on the webhooks page")
    await page.screenshots("dashboard-webhooks-failing")
    webhook_receiver.fail_next = 0
    async with page.page.expect_navigation():
        await page.page.locator('[data-action="redeliver"]').first.click()
    assert "queued again" in await page.page.inner_text("main")

    async def received() -> bool:
        return any(
            w.event["data"]["object"]["id"] == intent["id"] for w in webhook_receiver.received
        )

    await wait_for(received, timeout=60, what="the redelivered webhook")


async def test_a_form_without_its_csrf_token_is_refused(
    suite: RunningSuite, open_page: OpenPage
) -> None:
    page = await signed_in(suite, open_page, ADMIN)
    await page.page.evaluate(
        'document.querySelector(\'form[action="/logout"] input[name="csrf_token"]\').remove()'
    )
    async with page.page.expect_response(lambda r: r.url.endswith("/logout")) as answer:
        await page.page.click('form[action="/logout"] button')
    response = await answer.value
    assert response.status == 403
    await page.page.wait_for_load_state()
    assert "security token" in await page.page.inner_text("main")
    await page.page.goto(f"{suite.dashboard}/intents")
    assert page.page.url.endswith("/intents"), "the refused logout must not have ended the session"


async def test_every_page_at_phone_and_desktop_width_stays_on_this_host(
    suite: RunningSuite, anvil: AnvilChain, open_page: OpenPage
) -> None:
    intent, _ = await paid_intent(suite, anvil, reference="order-3001")
    await create_intent(suite, reference="order-3002")
    login = await open_page(f"{suite.dashboard}/login", viewport="phone")
    await login.screenshots("dashboard-login")
    assert_stayed_local(login)
    page = await signed_in(suite, open_page, ADMIN)
    await shown_in_dashboard(suite, page, intent["id"], "paid")

    for name, path in (*PAGES, ("intent", f"/intents/{intent['id']}")):
        await page.page.goto(f"{suite.dashboard}{path}")
        heading = await page.page.inner_text("h1")
        assert heading, name
        await page.screenshots(f"dashboard-{name}")
    assert_stayed_local(page)
    async with httpx.AsyncClient() as http:
        assert (
            await http.get(f"{suite.dashboard}/static/vendor/chart.umd.min.js")
        ).status_code == 200
