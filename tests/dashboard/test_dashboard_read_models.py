"""The dashboard's read models against the real PostgreSQL, and the JSON API over them:
snapshots build one row per intent and a timeline entry each, late older events never
overwrite newer ones, watcher reports, chain heads, balances, the address pool and
reconciliation land in their tables, and the overview's figures are exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from stablegate_common.core.assets import MAINNET, AssetRegistry
from stablegate_common.db import Database
from stablegate_dashboard.chain_heads.models import ChainHeadView
from stablegate_dashboard.intents import repository
from stablegate_dashboard.intents.models import IntentView, TransferClaimView
from stablegate_dashboard.overview.service import overview
from stablegate_dashboard.reconciliation import service as reconciliation
from stablegate_dashboard.transfers.models import TransferView
from stablegate_dashboard.wallets import service as wallets
from tests.dashboard.support import (
    balance_event,
    deliver,
    discrepancy_events,
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
    with_status,
)

MAINNET_REGISTRY = AssetRegistry.from_mapping(MAINNET)


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


# -- the read models added for the pages ------------------------------------------------


async def test_the_timeline_keeps_every_snapshot_even_late_ones(dashboard_db: Database) -> None:
    created = intent_event(sequence=1, created=True)
    paid = next_snapshot(created, sequence=3, transfers=[transfer()])
    confirming = next_snapshot(created, sequence=2, transfers=[transfer(status="pending")])
    for event in (created, paid, confirming, paid):  # late, and one duplicate
        await deliver(dashboard_db, event)

    async with dashboard_db.sessions() as session:
        timeline = await repository.timeline(session, created.data["intent_id"])
    assert [(e.sequence, e.status) for e in timeline] == [
        (1, "awaiting_payment"),
        (2, "awaiting_payment"),  # a pending transfer, not confirmed yet
        (3, "paid"),
    ]
    assert [e.event_type for e in timeline] == [
        "intent.created",
        "intent.updated",
        "intent.updated",
    ]
    row = await intent_row(dashboard_db, created.data["intent_id"])
    assert row is not None
    assert row.sequence == 3


async def test_paid_at_is_the_first_time_paid_and_clears_when_a_reorg_takes_it_back(
    dashboard_db: Database,
) -> None:
    created = intent_event(sequence=1, created=True)
    paid = next_snapshot(created, sequence=2, transfers=[transfer()])
    again = next_snapshot(created, sequence=3, transfers=[transfer()])
    intent_id = created.data["intent_id"]

    await deliver(dashboard_db, created)
    assert (await intent_row(dashboard_db, intent_id)).paid_at is None  # type: ignore[union-attr]
    await deliver(dashboard_db, paid)
    await deliver(dashboard_db, again)
    row = await intent_row(dashboard_db, intent_id)
    assert row is not None
    assert row.paid_at == paid.occurred_at  # the later snapshot kept the first time
    await deliver(dashboard_db, next_snapshot(created, sequence=4, transfers=[]))
    row = await intent_row(dashboard_db, intent_id)
    assert row is not None
    assert (row.status, row.paid_at) == ("awaiting_payment", None)


async def test_claims_link_each_transfer_to_its_intent(dashboard_db: Database) -> None:
    first, second = transfer(10 * USDT), transfer(15 * USDT)
    event = intent_event(sequence=1, transfers=[first, second])
    await deliver(dashboard_db, event)

    async with dashboard_db.sessions() as session:
        claims = {c.tx_hash: c.intent_id for c in await session.scalars(select(TransferClaimView))}
    assert claims == {
        first.tx_hash: event.data["intent_id"],
        second.tx_hash: event.data["intent_id"],
    }


async def test_balances_keep_the_newest_per_merchant_network_and_asset(
    dashboard_db: Database,
) -> None:
    for event in (
        balance_event("mer_a", 30 * USDT, sequence=3),
        balance_event("mer_a", 10 * USDT, sequence=1),  # late
        balance_event("mer_b", 5 * USDT, sequence=1),
    ):
        await deliver(dashboard_db, event)

    async with dashboard_db.sessions() as session:
        rows = {b.merchant_id: b.available_base_units for b in await wallets.balances(session)}
        [total] = await wallets.balance_totals(session)
    assert rows == {"mer_a": 30 * USDT, "mer_b": 5 * USDT}
    assert (total.available_base_units, total.merchants) == (35 * USDT, 2)


async def test_the_pool_counts_free_allocated_and_cooling_addresses(dashboard_db: Database) -> None:
    free, waiting, ended, cooled = (evm_address() for _ in range(4))
    await deliver(dashboard_db, provisioned_event("evm", [free, waiting, ended, cooled]))
    await deliver(dashboard_db, provisioned_event("evm", [free], first_index=0))  # again: no-op
    await deliver(dashboard_db, intent_event(deposit_address=waiting))
    await deliver(dashboard_db, intent_event(deposit_address=ended, status="expired"))
    old = intent_event(deposit_address=cooled, status="expired")
    await deliver(dashboard_db, old)
    now = datetime.now(UTC)

    async with dashboard_db.sessions() as session:
        pools = await wallets.pools(session, MAINNET_REGISTRY, cooldown_seconds=3600, now=now)
        later = await wallets.pools(
            session, MAINNET_REGISTRY, cooldown_seconds=3600, now=now + timedelta(hours=2)
        )
        active = await wallets.recent_addresses(session, cooldown_seconds=3600, now=now)
    evm = next(p for p in pools if p.family == "evm")
    assert (evm.total, evm.free, evm.allocated, evm.cooling) == (4, 1, 1, 2)
    assert set(evm.networks) == {"ethereum", "bsc"}
    evm_later = next(p for p in later if p.family == "evm")
    assert (evm_later.free, evm_later.allocated, evm_later.cooling) == (3, 1, 0)
    assert {a.address: a.state for a in active} == {
        waiting: "allocated",
        ended: "cooling",
        cooled: "cooling",
    }


async def test_discrepancies_open_and_resolve_in_either_order(dashboard_db: Database) -> None:
    in_order = discrepancy_events(evm_address(), ledger=0, chain=7 * USDT)
    reversed_ = discrepancy_events(evm_address(), ledger=1, chain=2)
    still_open = discrepancy_events(evm_address(), ledger=5, chain=6)
    for event in (*in_order, reversed_[1], reversed_[0], still_open[0]):
        await deliver(dashboard_db, event)
    await deliver(dashboard_db, run_event(discrepancies=1))

    async with dashboard_db.sessions() as session:
        open_ones = await reconciliation.discrepancies(session, status="open")
        resolved = await reconciliation.discrepancies(session, status="resolved")
        runs = await reconciliation.recent_runs(session)
    assert [d.id for d in open_ones] == [still_open[0].subject]
    assert {d.id for d in resolved} == {in_order[0].subject, reversed_[0].subject}
    late = next(d for d in resolved if d.id == reversed_[0].subject)
    assert (late.ledger_base_units, late.chain_base_units) == (1, 2)
    assert [r.discrepancies for r in runs] == [1]


async def test_the_overview_sums_per_asset_without_rounding(dashboard_db: Database) -> None:
    now = datetime.now(UTC)
    events = [
        intent_event(transfers=[transfer(25 * USDT)], created_at=now - timedelta(minutes=10)),
        intent_event(
            transfers=[transfer(12_345_678_901_234_567_891)],  # 12.345678901234567891 on BSC
            network="bsc",
            decimals=18,
            amount_base_units=12_345_678_901_234_567_891,
            created_at=now - timedelta(minutes=30),
        ),
        intent_event(created_at=now - timedelta(minutes=5)),  # still waiting
        intent_event(status="expired", created_at=now - timedelta(hours=2)),
    ]
    for event in events:
        await deliver(dashboard_db, event)

    async with dashboard_db.sessions() as session:
        day = await overview(session, "24h", now=now + timedelta(seconds=1))
        week = await overview(session, "7d", now=now + timedelta(seconds=1))
    assert day.totals_by_asset == {"USDT": Decimal("37.345678901234567891")}
    assert {(v.network, v.count, v.base_units) for v in day.volumes} == {
        ("ethereum", 1, 25 * USDT),
        ("bsc", 1, 12_345_678_901_234_567_891),
    }
    assert (day.created, day.paid) == (4, 2)
    assert day.paid_rate == Decimal(50)
    assert day.median_seconds_to_paid is not None
    assert 600 < day.median_seconds_to_paid < 30 * 60 + 5  # halfway between 10 and 30 min
    assert len(day.chart["volume"]["labels"]) in (24, 25)
    assert sum(Decimal(x) for x in day.chart["volume"]["datasets"][0]["data"]) == Decimal(
        "37.345678901234567891"
    )
    assert len(week.chart["volume"]["labels"]) in (7, 8)
