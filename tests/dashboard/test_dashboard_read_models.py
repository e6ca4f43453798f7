"""The dashboard's read models against the real PostgreSQL, and the read-only JSON API
over them: snapshots build one row per intent, late older events never overwrite newer
ones, watcher reports and chain heads land in their tables."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from stablegate_common.bus import idempotent
from stablegate_common.db import Database
from stablegate_common.events import Event
from stablegate_dashboard.app import CONSUMERS
from stablegate_dashboard.chain_heads.models import ChainHeadView
from stablegate_dashboard.intents.models import IntentView
from stablegate_dashboard.transfers.models import TransferView
from tests.reconciler.factories import (
    USDT,
    chain_transfer_event,
    head_event,
    intent_event,
    next_snapshot,
    transfer,
    with_status,
)

HANDLERS = {keys[0].split(".")[0]: (name, handler) for name, keys, handler in CONSUMERS}


async def deliver(db: Database, event: Event) -> None:
    """What the bus does: the consumer bound to the event's family, behind the inbox."""
    name, handler = HANDLERS[event.type.split(".")[0]]
    await idempotent(db, name, handler)(event)


async def intent_row(db: Database, intent_id: str) -> IntentView | None:
    async with db.sessions() as session:
        return await session.get(IntentView, intent_id)


async def test_snapshots_build_one_row_per_intent(dashboard_db: Database) -> None:
    created = intent_event(sequence=1, created=True)
    paid = transfer(25 * USDT)
    intent_id = created.data["intent_id"]

    await deliver(dashboard_db, created)
    row = await intent_row(dashboard_db, intent_id)
    assert row is not None
    assert (row.status, row.sequence, row.transfers) == ("awaiting_payment", 1, [])

    await deliver(dashboard_db, next_snapshot(created, sequence=2, transfers=[paid]))

    row = await intent_row(dashboard_db, intent_id)
    assert row is not None
    assert (row.status, row.sequence) == ("paid", 2)
    assert row.amount_confirmed_base_units == 25 * USDT
    assert row.transfers[0]["transfer_id"] == paid.transfer_id
    assert row.transfers[0]["amount_base_units"] == str(25 * USDT)
    async with dashboard_db.sessions() as session:
        assert len(list(await session.scalars(select(IntentView)))) == 1


async def test_an_older_snapshot_does_not_overwrite_a_newer_one(dashboard_db: Database) -> None:
    paid = transfer()
    newer = intent_event(sequence=3, transfers=[paid])
    older = next_snapshot(newer, sequence=2, transfers=[with_status(paid, "pending")])

    await deliver(dashboard_db, newer)
    await deliver(dashboard_db, older)

    row = await intent_row(dashboard_db, newer.data["intent_id"])
    assert row is not None
    assert (row.status, row.sequence) == ("paid", 3)
    assert row.transfers[0]["status"] == "confirmed"


async def test_transfer_reports_keep_the_newest_status(dashboard_db: Database) -> None:
    detected = chain_transfer_event("detected", sequence=1, confirmations=1)
    same_log = {k: detected.data[k] for k in ("tx_hash", "log_index", "to_address", "block_hash")}
    confirmed = chain_transfer_event("confirmed", sequence=2, **same_log)
    reverted = chain_transfer_event("reverted", sequence=3, **same_log)

    for event in (detected, reverted, confirmed):  # the confirmation arrives last
        await deliver(dashboard_db, event)

    async with dashboard_db.sessions() as session:
        [row] = list(await session.scalars(select(TransferView)))
    assert (row.status, row.sequence) == ("reverted", 3)
    assert (row.network, row.tx_hash, row.log_index) == ("ethereum", detected.data["tx_hash"], 0)
    assert row.amount_base_units == 10 * USDT


async def test_chain_heads_keep_the_newest_per_network(dashboard_db: Database) -> None:
    for event in (
        head_event("ethereum", head=120),
        head_event("ethereum", head=110),
        head_event("bsc", head=7),
    ):
        await deliver(dashboard_db, event)

    async with dashboard_db.sessions() as session:
        rows = {r.network: r.head_block for r in await session.scalars(select(ChainHeadView))}
    assert rows == {"ethereum": 120, "bsc": 7}


async def test_get_intent_returns_the_read_model(
    dashboard_db: Database, api: httpx.AsyncClient
) -> None:
    event = intent_event(sequence=2, transfers=[transfer(25 * USDT)], reference="order-42")
    await deliver(dashboard_db, event)
    intent_id = event.data["intent_id"]

    response = await api.get(f"/api/intents/{intent_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == intent_id
    assert body["object"] == "payment_intent"
    assert body["status"] == "paid"
    assert body["reference"] == "order-42"
    assert (body["amount"], body["amount_base_units"]) == ("25.00", str(25 * USDT))
    assert body["amount_confirmed"] == "25.00"
    assert body["deposit_address"] == event.data["deposit_address"]
    assert body["sequence"] == 2
    assert body["transfers"][0]["status"] == "confirmed"


async def test_get_unknown_intent_is_a_404_envelope(
    dashboard_db: Database, api: httpx.AsyncClient
) -> None:
    response = await api.get("/api/intents/pi_missing")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"
    assert response.json()["error"]["param"] == "id"


async def test_list_filters_by_status_newest_first_with_pagination(
    dashboard_db: Database, api: httpx.AsyncClient
) -> None:
    paid = [intent_event(transfers=[transfer()]) for _ in range(3)]
    waiting = intent_event()
    for event in [*paid, waiting]:
        await deliver(dashboard_db, event)
    newest_first = sorted((e.data["intent_id"] for e in paid), reverse=True)

    first = (await api.get("/api/intents", params={"status": "paid", "limit": 2})).json()
    rest = (
        await api.get(
            "/api/intents",
            params={"status": "paid", "limit": 2, "starting_after": first["data"][-1]["id"]},
        )
    ).json()
    everything = (await api.get("/api/intents")).json()

    assert first["object"] == "list"
    assert [i["id"] for i in first["data"]] == newest_first[:2]
    assert first["has_more"] is True
    assert [i["id"] for i in rest["data"]] == newest_first[2:]
    assert rest["has_more"] is False
    assert len(everything["data"]) == 4


@pytest.mark.parametrize(
    ("params", "param"),
    [({"status": "lost"}, "status"), ({"limit": "0"}, "limit"), ({"limit": "x"}, "limit")],
)
async def test_list_refuses_bad_filters_naming_the_field(
    dashboard_db: Database, api: httpx.AsyncClient, params: dict[str, str], param: str
) -> None:
    response = await api.get("/api/intents", params=params)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
