"""Every page renders from the read models for a signed-in user, finds what ops search
for, and shows merchant-written text (reference, description, metadata) as text."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from stablegate_common.db import Database
from stablegate_common.events import Event
from tests.dashboard.support import (
    FakeGateway,
    balance_event,
    deliver,
    delivery,
    discrepancy_events,
    endpoint,
    provisioned_event,
    run_event,
)
from tests.reconciler.factories import (
    USDT,
    chain_transfer_event,
    evm_address,
    head_event,
    intent_event,
    next_snapshot,
    transfer,
)

EXPLORER_TITLE = re.compile(r'title="(0x[0-9a-f]{64}) \(opens the explorer\)"')
SignedIn = Callable[[str], Awaitable[httpx.AsyncClient]]

HOSTILE_REFERENCE = '<script>alert("ref")</script>'
HOSTILE_DESCRIPTION = "<b onmouseover=alert(1)>2 x T-shirt</b>"
HOSTILE_METADATA = {"note": '"><img src=x onerror=alert("meta")>'}
PAGES = (
    "/",
    "/?period=7d",
    "/intents",
    "/transfers",
    "/wallets",
    "/reconciliation",
    "/webhooks",
    "/system",
)


async def paid_intent(db: Database, **overrides: Any) -> Event:
    """An intent created then paid, its transfer reported by the watcher too."""
    created = intent_event(sequence=1, created=True, **overrides)
    paid = transfer(25 * USDT)
    await deliver(db, created)
    await deliver(db, next_snapshot(created, sequence=2, transfers=[paid]))
    await deliver(
        db,
        chain_transfer_event(
            "confirmed",
            tx_hash=paid.tx_hash,
            to_address=created.data["deposit_address"],
            amount_base_units=25 * USDT,
        ),
    )
    return created


async def test_every_page_renders_for_a_viewer(
    dashboard_db: Database, signed_in: SignedIn, fake_gateway: FakeGateway
) -> None:
    created = await paid_intent(dashboard_db)
    await deliver(dashboard_db, provisioned_event("evm", [created.data["deposit_address"]]))
    await deliver(dashboard_db, balance_event(created.data["merchant_id"], 25 * USDT, sequence=1))
    await deliver(dashboard_db, run_event())
    await deliver(dashboard_db, head_event(head=130))
    fake_gateway.endpoints.append(hook := endpoint())
    fake_gateway.deliveries[hook["id"]] = [delivery()]
    viewer = await signed_in("viewer")

    for path in (*PAGES, f"/intents/{created.data['intent_id']}"):
        page = await viewer.get(path)
        assert page.status_code == 200, (path, page.text[:800])
        assert "viewer" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert page.headers["cache-control"] == "no-store"


async def test_hostile_merchant_text_is_shown_as_text_everywhere(
    dashboard_db: Database, signed_in: SignedIn
) -> None:
    created = await paid_intent(
        dashboard_db,
        reference=HOSTILE_REFERENCE,
        description=HOSTILE_DESCRIPTION,
        metadata=HOSTILE_METADATA,
    )
    viewer = await signed_in("viewer")

    for path in ("/", "/intents", f"/intents/{created.data['intent_id']}", "/intents?q=x"):
        html = (await viewer.get(path)).text
        assert "<script>alert" not in html, path
        assert "<img src=x" not in html, path
        assert "<b onmouseover" not in html, path
    detail = (await viewer.get(f"/intents/{created.data['intent_id']}")).text
    assert "&lt;script&gt;alert(&#34;ref&#34;)&lt;/script&gt;" in detail
    assert "&lt;img src=x onerror=alert(&#34;meta&#34;)&gt;" in detail
    assert "&lt;b onmouseover=alert(1)&gt;2 x T-shirt&lt;/b&gt;" in detail
    listed = (await viewer.get("/intents")).text
    assert "&lt;script&gt;alert(&#34;ref&#34;)&lt;/script&gt;" in listed


async def test_search_finds_an_intent_by_id_reference_address_or_transaction(
    dashboard_db: Database, signed_in: SignedIn
) -> None:
    wanted = await paid_intent(dashboard_db, reference="order-77")
    other = await paid_intent(dashboard_db, reference="order-78")
    intent_id = wanted.data["intent_id"]
    tx_hash = await _tx_of(dashboard_db, intent_id)
    address = wanted.data["deposit_address"]
    viewer = await signed_in("viewer")

    for query in (
        intent_id,
        "order-77",
        address,
        "0x" + address[2:].upper(),
        tx_hash,
        f" {tx_hash} ",
    ):
        html = (await viewer.get("/intents", params={"q": query})).text
        assert f'data-intent-id="{intent_id}"' in html, query
        assert f'data-intent-id="{other.data["intent_id"]}"' not in html, query
    nothing = (await viewer.get("/intents", params={"q": "0x" + "ab" * 32})).text
    assert "No payment intent matches." in nothing


async def _tx_of(db: Database, intent_id: str) -> str:
    from stablegate_dashboard.intents.models import IntentView

    async with db.sessions() as session:
        row = await session.get(IntentView, intent_id)
    assert row is not None
    return str(row.transfers[0]["tx_hash"])


async def test_filters_and_pagination_walk_every_intent_once(
    dashboard_db: Database, signed_in: SignedIn
) -> None:
    waiting = [intent_event(sequence=1, created=True) for _ in range(53)]
    for event in waiting:
        await deliver(dashboard_db, event)
    paid = await paid_intent(dashboard_db)
    viewer = await signed_in("viewer")

    first = (await viewer.get("/intents", params={"status": "awaiting_payment"})).text
    assert first.count("data-intent-id=") == 50
    assert f'data-intent-id="{paid.data["intent_id"]}"' not in first
    older = first.split("starting_after=")[1].split('"')[0]
    second = (
        await viewer.get("/intents", params={"status": "awaiting_payment", "starting_after": older})
    ).text
    assert second.count("data-intent-id=") == 3
    assert "← Newer" in second
    seen = {part.split('"')[0] for part in (first + second).split('data-intent-id="')[1:]}
    assert seen == {e.data["intent_id"] for e in waiting}
    only_paid = (await viewer.get("/intents", params={"status": "paid"})).text
    assert only_paid.count("data-intent-id=") == 1


async def test_the_detail_page_shows_the_timeline_and_the_transfers(
    dashboard_db: Database, signed_in: SignedIn
) -> None:
    created = await paid_intent(dashboard_db)
    tx_hash = await _tx_of(dashboard_db, created.data["intent_id"])
    viewer = await signed_in("viewer")

    html = (await viewer.get(f"/intents/{created.data['intent_id']}")).text

    timeline = html.split('id="timeline"')[1].split("</ol>")[0].lower()
    assert timeline.index("paid") < timeline.index("awaiting payment")  # newest first
    assert "v2" in timeline
    assert "v1" in timeline
    assert f"https://etherscan.io/tx/{tx_hash}" in html
    assert "3/3" in html  # the watcher's confirmations beside the transfer


async def test_an_unknown_intent_is_a_404_page(signed_in: SignedIn) -> None:
    viewer = await signed_in("viewer")
    page = await viewer.get("/intents/pi_missing")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "pi_missing" in page.text


async def test_transfers_are_told_attributed_unsolicited_or_ignored(
    dashboard_db: Database, signed_in: SignedIn
) -> None:
    created = await paid_intent(dashboard_db)
    stray = chain_transfer_event("detected", to_address=evm_address())
    zero = chain_transfer_event("confirmed", amount_base_units=0)
    fake_token = chain_transfer_event("confirmed", token_contract=evm_address())
    for event in (stray, zero, fake_token):
        await deliver(dashboard_db, event)
    viewer = await signed_in("viewer")

    async def hashes(kind: str) -> set[str]:
        html = (await viewer.get("/transfers", params={"kind": kind})).text
        return set(_tx_hashes(html))

    attributed = await hashes("attributed")
    assert attributed == {await _tx_of(dashboard_db, created.data["intent_id"])}
    assert await hashes("unsolicited") == {stray.data["tx_hash"]}
    assert await hashes("ignored") == {zero.data["tx_hash"], fake_token.data["tx_hash"]}


def _tx_hashes(html: str) -> list[str]:
    return EXPLORER_TITLE.findall(html)


async def test_wallets_show_the_pool_balances_and_activity(
    dashboard_db: Database, signed_in: SignedIn
) -> None:
    created = await paid_intent(dashboard_db)
    spare = [evm_address() for _ in range(3)]
    await deliver(dashboard_db, provisioned_event("evm", [created.data["deposit_address"], *spare]))
    await deliver(
        dashboard_db, balance_event(created.data["merchant_id"], 1_234_567_890_000, sequence=4)
    )
    viewer = await signed_in("viewer")

    html = (await viewer.get("/wallets")).text

    assert "1,234,567.89" in html
    assert created.data["deposit_address"] in html
    assert 'data-share="1" data-of="4"' in html  # the paid intent's address is cooling down


async def test_reconciliation_shows_runs_and_open_discrepancies(
    dashboard_db: Database, signed_in: SignedIn
) -> None:
    address = evm_address()
    opened, _ = discrepancy_events(address, ledger=10 * USDT, chain=7 * USDT)
    await deliver(dashboard_db, opened)
    await deliver(
        dashboard_db, run_event(status="partial", networks={"bsc": {"error": "node down"}})
    )
    viewer = await signed_in("viewer")

    html = (await viewer.get("/reconciliation")).text

    assert address in html
    assert "10.00" in html
    assert "7.00" in html
    assert "-3.00" in html
    assert "node down" in html
    assert "Partial" in html


@pytest.mark.parametrize("path", ["/", "/intents", "/system", "/intents/pi_x"])
async def test_pages_need_a_session(anonymous: httpx.AsyncClient, path: str) -> None:
    response = await anonymous.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
