"""The hosted checkout served in process: what each intent state tells the customer, what
the status endpoint lets out (and keeps in), escaping, languages, return links, Tron,
and the vendored static files. The page in a real browser: tests/e2e/test_checkout_browser.py.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from stablegate_common.hd import DEVNET_TRON_XPUB
from stablegate_gateway.checkout.api import STATIC_DIR, clock
from stablegate_gateway.checkout.i18n import (
    DEFAULT_LOCALE,
    Translator,
    catalogues,
    fields_of,
    negotiate,
)
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.intents.models import PaymentIntent
from tests.fixtures.gateway import ApiMerchant, intent_body

ROOT = Path(__file__).resolve().parents[2]
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
STATUS_KEYS = {
    "id",
    "status",
    "exception",
    "tone",
    "step",
    "headline",
    "detail",
    "confirmations",
    "title",
    "received_line",
    "accepts_payment",
    "amount_to_send",
    "amount_to_send_base_units",
    "payment_uri",
    "deposit_address",
    "amount_received",
    "transfers",
    "expires_at",
    "seconds_left",
    "seconds_total",
    "final",
}


async def create(api: httpx.AsyncClient, merchant: ApiMerchant, **body: Any) -> dict[str, Any]:
    response = await api.post(
        "/v1/payment_intents", json=intent_body(**body), headers=merchant.headers
    )
    assert response.status_code == 200, response.text
    intent: dict[str, Any] = response.json()
    return intent


async def set_state(ctx: GatewayContext, intent_id: str, **values: Any) -> None:
    """Put the intent in a state directly: these tests are about what the page says."""
    async with ctx.db.transaction() as session:
        await session.execute(
            update(PaymentIntent).where(PaymentIntent.id == intent_id).values(**values)
        )


async def status_of(api: httpx.AsyncClient, intent_id: str, lang: str = "en") -> dict[str, Any]:
    response = await api.get(f"/pay/{intent_id}/status", params={"lang": lang})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_page_shows_amount_network_address_qr_and_copy_buttons(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant, amount="25.5")
    page = await api.get(f"/pay/{intent['id']}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="en">' in html
    assert "Acme Shop" in html
    assert '<span class="amount-value" id="amount-due">25.50</span>' in html
    assert "Ethereum (ERC-20)" in html
    assert "Send only USDT on Ethereum (ERC-20)" in html
    assert intent["deposit_address"] in html
    assert f'src="/pay/{intent["id"]}/qr.svg?v=25500000"' in html
    assert 'aria-label="Copy the deposit address"' in html
    assert 'aria-label="Copy the amount"' in html
    assert 'role="status" aria-live="polite"' in html
    assert f'href="{intent["payment_uri"]}"' in html.replace("&amp;", "&")


async def test_the_page_loads_nothing_from_elsewhere_and_cannot_be_framed(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant)
    page = await api.get(f"/pay/{intent['id']}")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    loaded = [s for s in sources if not s.startswith(("#", "?", "ethereum:"))]
    assert loaded, "the page loads its own files"
    assert all(s.startswith("/") for s in loaded), loaded


async def test_merchant_html_is_text_and_metadata_stays_private(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    intent = await create(
        api,
        merchant,
        reference=XSS,
        description=f"T-shirt {XSS}",
        metadata={"internal_note": "<b>VIP</b> margin 40%"},
    )
    html = (await api.get(f"/pay/{intent['id']}")).text
    assert XSS not in html
    assert "<img src=x" not in html
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert html.count(escaped) >= 2  # the reference and the description, as text
    assert "VIP" not in html
    assert "margin 40%" not in html
    status = await api.get(f"/pay/{intent['id']}/status")
    assert "VIP" not in status.text
    assert "internal_note" not in status.text


async def test_the_status_lets_out_only_what_the_customer_may_see(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant, reference="order-7", metadata={"secret": "s3"})
    status = await status_of(api, intent["id"])
    assert set(status) == STATUS_KEYS
    assert status["status"] == "awaiting_payment"
    assert status["accepts_payment"] is True
    assert status["amount_to_send"] == "25.00"
    assert status["payment_uri"] == intent["payment_uri"]
    assert status["deposit_address"] == intent["deposit_address"]
    assert 3590 <= status["seconds_left"] <= 3600
    assert status["seconds_total"] == 3600


# (status, exception, confirmed, pending, expired already) → (message key, step, accepts, to send)
STATES = [
    ("awaiting_payment", None, 0, 0, False, "awaiting_payment", 1, True, "25.00"),
    ("confirming", None, 0, 25_000_000, False, "confirming", 2, False, "0.00"),
    ("confirming", None, 10_000_000, 5_000_000, False, "confirming_partial", 2, True, "10.00"),
    ("partially_paid", None, 10_000_000, 0, False, "partially_paid", 2, True, "15.00"),
    ("paid", None, 25_000_000, 0, False, "paid", 3, False, "0.00"),
    ("paid", "overpaid", 30_000_000, 0, False, "overpaid", 3, False, "0.00"),
    ("paid", "wrong_asset", 25_000_000, 0, False, "paid_with_extra", 3, False, "0.00"),
    ("expired", None, 0, 0, True, "expired", 0, False, "0.00"),
    ("canceled", None, 0, 0, False, "canceled", 0, False, "0.00"),
    ("requires_action", "underpaid", 10_000_000, 0, True, "underpaid", 0, False, "0.00"),
    ("requires_action", "paid_late", 25_000_000, 0, True, "paid_late", 0, False, "0.00"),
    ("requires_action", "wrong_asset", 0, 0, False, "wrong_asset", 0, False, "0.00"),
    ("requires_action", "wrong_network", 0, 0, False, "wrong_network", 0, False, "0.00"),
    # Past expiry before the expiry job ran: the address is no longer offered.
    ("awaiting_payment", None, 0, 0, True, "closing", 1, False, "0.00"),
    ("partially_paid", None, 10_000_000, 0, True, "closing", 2, False, "0.00"),
]


@pytest.mark.parametrize(
    ("status", "exception", "confirmed", "pending", "past", "key", "step", "accepts", "to_send"),
    STATES,
)
async def test_each_state_says_what_to_do(
    api: httpx.AsyncClient,
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    status: str,
    exception: str | None,
    confirmed: int,
    pending: int,
    past: bool,
    key: str,
    step: int,
    accepts: bool,
    to_send: str,
) -> None:
    intent = await create(api, merchant, reference="order-42")
    expires_at = datetime.now(UTC) + (timedelta(seconds=-5) if past else timedelta(hours=1))
    await set_state(
        gateway_ctx,
        intent["id"],
        status=status,
        exception=exception,
        amount_confirmed_base_units=confirmed,
        amount_pending_base_units=pending,
        expires_at=expires_at,
    )
    shown = await status_of(api, intent["id"])
    # Headlines name at most the merchant, "Acme Shop" in these tests.
    assert shown["headline"] == Translator("en")(f"status.{key}.headline", merchant="Acme Shop")
    assert (shown["step"], shown["accepts_payment"], shown["amount_to_send"]) == (
        step,
        accepts,
        to_send,
    )
    if accepts:
        base_units = str(int(to_send.replace(".", "")) * 10_000)
        assert shown["payment_uri"].endswith(f"&uint256={base_units}")
    else:
        assert shown["payment_uri"] is None
        qr = await api.get(f"/pay/{intent['id']}/qr.svg")
        assert qr.status_code == 404
    assert shown["final"] is (status not in ("awaiting_payment", "confirming", "partially_paid"))
    if key in ("underpaid", "paid_late", "wrong_asset", "overpaid"):
        assert "order-42" in shown["detail"]  # what to quote to the merchant
    if key in ("partially_paid", "confirming_partial"):
        assert f"remaining {to_send} USDT" in shown["detail"]


async def test_a_partial_payment_asks_for_the_rest_in_the_qr_code(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant)
    await set_state(
        gateway_ctx, intent["id"], status="partially_paid", amount_confirmed_base_units=10_000_000
    )
    page = (await api.get(f"/pay/{intent['id']}")).text
    assert 'id="amount-to-send">15.00</span>' in page
    assert f'src="/pay/{intent["id"]}/qr.svg?v=15000000"' in page
    qr = await api.get(f"/pay/{intent['id']}/qr.svg")
    assert qr.status_code == 200
    assert qr.headers["content-type"] == "image/svg+xml"
    assert qr.content.startswith(b"<svg")


async def test_a_fiat_price_is_shown_beside_the_token_amount_due(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant)
    plain = (await api.get(f"/pay/{intent['id']}")).text
    assert 'id="price"' not in plain  # priced in the token itself: nothing to add
    await set_state(gateway_ctx, intent["id"], currency="EUR", amount_requested=Decimal("23"))
    priced = (await api.get(f"/pay/{intent['id']}")).text
    assert '<p class="price" id="price">Price: 23.00 EUR</p>' in priced
    assert '<span class="amount-value" id="amount-due">25.00</span>' in priced


async def test_return_links_are_kept_shown_when_due_and_only_http(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    intent = await create(
        api,
        merchant,
        success_url="https://shop.example/thanks?order=1",
        cancel_url="https://shop.example/cart",
    )
    assert intent["success_url"] == "https://shop.example/thanks?order=1"
    assert intent["cancel_url"] == "https://shop.example/cart"
    waiting = (await api.get(f"/pay/{intent['id']}")).text
    assert re.search(r'id="return-success" href="[^"]+" hidden', waiting)
    assert 'id="return-cancel" href="https://shop.example/cart"' in waiting
    await set_state(
        gateway_ctx, intent["id"], status="paid", amount_confirmed_base_units=25_000_000
    )
    paid = (await api.get(f"/pay/{intent['id']}")).text
    assert 'id="return-success" href="https://shop.example/thanks?order=1">' in paid

    for field in ("success_url", "cancel_url"):
        refused = await api.post(
            "/v1/payment_intents",
            json=intent_body(**{field: "javascript:alert(1)"}),
            headers=merchant.headers,
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == field


async def test_spanish_from_the_browser_and_lang_overrides_it(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant)
    spanish = await api.get(
        f"/pay/{intent['id']}", headers={"Accept-Language": "es-ES,es;q=0.9,en;q=0.8"}
    )
    assert spanish.headers["content-language"] == "es"
    assert '<html lang="es">' in spanish.text
    assert "Esperando tu pago" in spanish.text
    assert "Copiar la dirección de depósito" in spanish.text
    english = await api.get(
        f"/pay/{intent['id']}", params={"lang": "en"}, headers={"Accept-Language": "es"}
    )
    assert "Waiting for your payment" in english.text
    config = json.loads(
        re.search(r'id="checkout-config">(.*?)</script>', spanish.text, re.S).group(1)  # type: ignore[union-attr]
    )
    assert config["statusUrl"].endswith("?lang=es")  # the page polls in its own language
    assert (await status_of(api, intent["id"], "es"))["headline"] == "Esperando tu pago"


@pytest.mark.parametrize("gateway_settings", [{"tron_xpub": DEVNET_TRON_XPUB}], indirect=True)
async def test_tron_shows_the_bare_address_with_the_amount_beside_it(
    api: httpx.AsyncClient, merchant: ApiMerchant
) -> None:
    intent = await create(api, merchant, network="tron", amount="12.5")
    html = (await api.get(f"/pay/{intent['id']}")).text
    assert "Tron (TRC-20)" in html
    assert "Send only USDT on Tron (TRC-20)" in html
    assert "type the amount, 12.50 USDT, in your wallet" in html
    assert 'id="open-wallet"' not in html  # no payment URI to open on Tron
    status = await status_of(api, intent["id"])
    assert status["payment_uri"] == intent["deposit_address"]  # what the QR code holds


async def test_unknown_payments_get_a_page_and_an_api_error(api: httpx.AsyncClient) -> None:
    page = await api.get("/pay/pi_doesnotexist", headers={"Accept-Language": "es"})
    assert page.status_code == 404
    assert "Pago no encontrado" in page.text
    status = await api.get("/pay/pi_doesnotexist/status")
    assert status.status_code == 404
    assert status.json()["error"]["code"] == "resource_missing"


async def test_vendored_bootstrap_is_served_and_is_the_pinned_version(
    api: httpx.AsyncClient,
) -> None:
    pinned = json.loads((ROOT / "services/gateway/package.json").read_text())["dependencies"]
    css = await api.get("/static/checkout/vendor/bootstrap.min.css")
    assert css.status_code == 200
    assert f"Bootstrap  v{pinned['bootstrap']} " in css.text[:200]
    assert "sourceMappingURL" not in css.text  # nothing for the browser to fetch
    assert (STATIC_DIR / "vendor" / "bootstrap.LICENSE").read_text().startswith("The MIT License")
    script = await api.get("/static/checkout/checkout.js")
    assert script.status_code == 200
    assert "innerHTML" not in script.text  # the script writes text, never markup


@pytest.mark.parametrize(
    ("requested", "header", "expected"),
    [
        (None, None, "en"),
        (None, "es", "es"),
        (None, "es-MX", "es"),
        (None, "fr-FR,fr;q=0.9,es;q=0.8,en;q=0.7", "es"),
        (None, "en;q=0.5,es;q=0.9", "es"),
        (None, "es;q=0,en", "en"),  # q=0 means "not this one"
        (None, "de, *;q=0.1", "en"),
        (None, "es;q=abc", "en"),
        ("es", "en", "es"),
        ("ES_es", None, "es"),
        ("xx", "es", "es"),  # an unknown ?lang= falls back to the browser's choice
        ("", None, "en"),
    ],
)
def test_language_negotiation(requested: str | None, header: str | None, expected: str) -> None:
    assert negotiate(requested, header) == expected


def test_every_catalogue_has_the_english_keys_with_the_same_fields() -> None:
    english = catalogues()[DEFAULT_LOCALE]
    assert len(catalogues()) >= 2
    for locale, messages in catalogues().items():
        assert set(messages) == set(english), locale
        for key, text in messages.items():
            assert fields_of(text) == fields_of(english[key]), (locale, key)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0:00"), (59, "0:59"), (3599, "59:59"), (3600, "1:00:00"), (-3, "0:00")],
)
def test_clock(seconds: int, shown: str) -> None:
    assert clock(seconds) == shown
