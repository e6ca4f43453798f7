"""The hosted checkout in headless Chromium, against the whole suite on anvil.

The customer's page follows a real payment from waiting to paid without a reload; its
QR code, read back from a screenshot, is the exact EIP-681 URI; a partial payment asks for
the rest; an expired or incomplete payment says what to do; merchant HTML is text; the
page is usable from the keyboard; and it fetches nothing from outside the host.
Screenshots of every state at phone and desktop widths go to test-artifacts/browser/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import cv2
import numpy as np
import pytest
import pytest_asyncio

from tests.e2e.conftest import RunningSuite, _suite
from tests.e2e.test_ethereum_payment import create_intent, wait_for
from tests.fixtures.anvil import AnvilChain
from tests.fixtures.browser import BrowserPage, OpenPage

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
# Short expiries let a test watch a payment run out of time.
GATEWAY_ENV = {"GATEWAY_MIN_EXPIRES_IN_SECONDS": "5"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def suite(anvil: AnvilChain) -> AsyncIterator[RunningSuite]:
    async with _suite(anvil, "test_checkout_browser", service_env={"gateway": GATEWAY_ENV}) as s:
        yield s


async def headline_is(page: BrowserPage, text: str) -> None:
    async def shown() -> bool:
        return (await page.page.inner_text("#status-headline")).strip() == text

    await wait_for(shown, what=f"the headline {text!r}")


def decode_qr(png: bytes) -> str | None:
    """The text of the QR code in a screenshot, read by OpenCV; None when none is found."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None, "the screenshot is not an image"
    detector = cv2.QRCodeDetector()
    # A QR code read from a cropped element screenshot needs its quiet zone back, and
    # OpenCV's detector is more reliable on a larger image: try as is, then padded and 2x.
    padded = cv2.copyMakeBorder(image, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255)
    for candidate in (image, padded, cv2.resize(padded, None, fx=2, fy=2)):
        text, points, _ = detector.detectAndDecode(candidate)
        if points is not None and text:
            return str(text)
    return None


async def qr_code_text(page: BrowserPage) -> str | None:
    """The text of the page's QR code, read from a screenshot of it."""
    qr = page.page.locator("#qr")
    await qr.scroll_into_view_if_needed()
    return decode_qr(await qr.screenshot())


async def visible(page: BrowserPage, selector: str) -> bool:
    return await page.page.locator(selector).is_visible()


async def load_marker(page: BrowserPage) -> str:
    return str(await page.page.evaluate("window.stablegateCheckout.loadId"))


def assert_stayed_local(page: BrowserPage) -> None:
    assert page.requests, "the page made requests"
    assert page.foreign_requests() == []
    assert page.errors == []
    assert page.console_errors == []  # no load failed, nothing refused by the CSP


async def test_the_page_goes_from_waiting_to_paid_without_reloading(
    suite: RunningSuite, anvil: AnvilChain, open_page: OpenPage
) -> None:
    intent = await create_intent(
        suite,
        reference="order-1042",
        description="2 x Organic cotton T-shirt",
        success_url="https://shop.example/orders/1042/thanks",
        cancel_url="https://shop.example/cart",
    )
    page = await open_page(f"{suite.gateway}/pay/{intent['id']}")
    navigations: list[str] = []
    page.page.on(
        "framenavigated",
        lambda frame: navigations.append(frame.url) if frame == page.page.main_frame else None,
    )
    marker = await load_marker(page)
    await headline_is(page, "Waiting for your payment")
    assert await visible(page, "#return-cancel")
    assert await page.page.inner_text("#amount-due") == "25.00"
    assert await page.page.inner_text("#network-name") == "Ethereum devnet (ERC-20)"
    warning = await page.page.inner_text("#network-warning")
    assert "Send only USDT on Ethereum devnet (ERC-20)" in warning
    assert await page.page.inner_text("#deposit-address") == intent["deposit_address"]

    async def qr_is_the_payment_uri() -> bool:
        return await qr_code_text(page) == intent["payment_uri"]

    await wait_for(qr_is_the_payment_uri, what="the QR code to read as the payment URI")
    await page.screenshots("checkout-1-waiting")

    tx_hash = await anvil.transfer(anvil.usdt, intent["deposit_address"], 25_000_000)
    await headline_is(page, "Payment detected")
    assert tx_hash in await page.page.inner_text("#transfers")
    required = intent["confirmations_required"]
    assert f"of {required} confirmations" in await page.page.inner_text("#confirmations")
    assert not await visible(page, "#pay")  # nothing more to send
    assert not await visible(page, "#return-cancel")  # paid already: no "cancel" offered
    await page.screenshots("checkout-2-detected")

    await anvil.mine(required - 1)
    await headline_is(page, "Payment received")
    assert await visible(page, "#return-success")
    assert await page.page.get_attribute("#return-success", "href") == intent["success_url"]
    assert not await visible(page, "#return-back")
    assert await page.page.inner_text("#transfers .tx-state") == "Confirmed"
    await page.screenshots("checkout-3-paid")

    assert await load_marker(page) == marker, "the page reloaded"
    assert navigations == []
    assert await page.page.evaluate("window.stablegateCheckout.polls") >= 2
    assert_stayed_local(page)


async def test_a_partial_payment_shows_the_remainder_and_its_qr_code(
    suite: RunningSuite, anvil: AnvilChain, open_page: OpenPage
) -> None:
    intent = await create_intent(suite, reference="order-2001")
    page = await open_page(f"{suite.gateway}/pay/{intent['id']}", viewport="phone")
    marker = await load_marker(page)
    await anvil.transfer(anvil.usdt, intent["deposit_address"], 10_000_000)
    await anvil.mine(intent["confirmations_required"] - 1)
    await headline_is(page, "Partially paid")
    assert await page.page.inner_text("#amount-to-send") == "15.00"
    detail = await page.page.inner_text("#status-detail")
    assert "We received 10.00 of 25.00 USDT" in detail
    assert "remaining 15.00 USDT to the same address" in detail
    assert await page.page.inner_text("#deposit-address") == intent["deposit_address"]
    expected_uri: str = intent["payment_uri"].replace("uint256=25000000", "uint256=15000000")

    async def qr_asks_for_the_rest() -> bool:
        return await qr_code_text(page) == expected_uri

    await wait_for(qr_asks_for_the_rest, what="the QR code for the remaining 15.00")
    await page.screenshots("checkout-4-partially-paid")

    await anvil.transfer(anvil.usdt, intent["deposit_address"], 15_000_000)
    await anvil.mine(intent["confirmations_required"] - 1)
    await headline_is(page, "Payment received")
    assert await page.page.locator("#transfer-rows li").count() == 2
    assert await load_marker(page) == marker
    assert_stayed_local(page)


async def test_running_out_of_time_says_what_to_do(
    suite: RunningSuite, anvil: AnvilChain, open_page: OpenPage
) -> None:
    unpaid = await create_intent(suite, expires_in=6, cancel_url="https://shop.example/cart")
    short = await create_intent(suite, expires_in=12, reference="order-3003")
    page = await open_page(f"{suite.gateway}/pay/{unpaid['id']}")
    other = await open_page(f"{suite.gateway}/pay/{short['id']}", viewport="phone")
    await anvil.transfer(anvil.usdt, short["deposit_address"], 5_000_000)
    await anvil.mine(short["confirmations_required"] - 1)
    await headline_is(other, "Partially paid")

    await headline_is(page, "This payment request has expired")
    assert not await visible(page, "#pay")  # the address is no longer offered
    assert await visible(page, "#return-back")
    assert "Do not send funds to this address" in await page.page.inner_text("#status-detail")
    await page.screenshots("checkout-5-expired")

    await headline_is(other, "Payment incomplete")
    detail = await other.page.inner_text("#status-detail")
    assert "We received 5.00 of 25.00 USDT" in detail
    assert "reference order-3003" in detail
    await other.screenshots("checkout-6-requires-action")
    assert_stayed_local(page)
    assert_stayed_local(other)


async def test_merchant_html_is_text_in_another_language(
    suite: RunningSuite, open_page: OpenPage
) -> None:
    intent = await create_intent(
        suite, reference=XSS, description=f"Pedido {XSS}", metadata={"note": XSS}
    )
    page = await open_page(f"{suite.gateway}/pay/{intent['id']}", locale="es-ES")
    await headline_is(page, "Esperando tu pago")
    assert await page.page.inner_text("#reference") == XSS
    assert await page.page.inner_text("#description") == f"Pedido {XSS}"
    assert await page.page.locator("main img[src='x'], main script").count() == 0
    await page.page.wait_for_timeout(500)
    assert await page.page.evaluate("window.__xss") is None
    assert await page.page.get_attribute("html", "lang") == "es"
    await page.screenshots("checkout-7-spanish-escaped")
    assert_stayed_local(page)


async def test_the_keyboard_reaches_and_uses_the_copy_buttons(
    suite: RunningSuite, open_page: OpenPage
) -> None:
    intent = await create_intent(suite)
    page = await open_page(f"{suite.gateway}/pay/{intent['id']}")
    await page.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await headline_is(page, "Waiting for your payment")
    labels = []
    for _ in range(8):
        await page.page.keyboard.press("Tab")
        labels.append(
            await page.page.evaluate(
                "document.activeElement.getAttribute('aria-label')"
                " || document.activeElement.textContent.trim()"
            )
        )
        if labels[-1] == "Copy the deposit address":
            break
    assert labels[0] == "Skip to payment details"
    assert labels.index("Copy the amount") < labels.index("Copy the deposit address")
    outline = await page.page.evaluate(
        "[getComputedStyle(document.activeElement).outlineStyle,"
        " getComputedStyle(document.activeElement).outlineWidth]"
    )
    assert outline == ["solid", "3px"], "keyboard focus is visible"
    await page.screenshot("checkout-8-keyboard-focus", full_page=False)

    await page.page.keyboard.press("Enter")
    await wait_for(
        lambda: page.page.evaluate("navigator.clipboard.readText()"), what="the clipboard"
    )
    assert await page.page.evaluate("navigator.clipboard.readText()") == intent["deposit_address"]
    assert await page.page.inner_text("#announcer") == "Address copied to the clipboard"
    assert_stayed_local(page)
