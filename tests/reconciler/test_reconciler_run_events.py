"""What the reconciler announces about its runs, for the dashboard's read models: one
`reconciliation.run_completed` per run with its tally, and a
`reconciliation.discrepancy_resolved` (same subject as the `reconciliation.discrepancy`
that opened it) when a run finds the books and the chain equal again."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from stablegate_common.chains.evm import EvmClient
from stablegate_common.core.assets import MAINNET, AssetRegistry
from stablegate_common.db import Database
from stablegate_common.events import Event, parse_payload
from stablegate_common.events.contracts import DiscrepancyResolved, ReconciliationRunCompleted
from stablegate_reconciler.reconciliation.jobs import ReconciliationJob
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.reconciler.factories import USDT
from tests.reconciler.support import outbox
from tests.reconciler.test_reconciler_reconciliation import book, bury, discrepancies, pay, report


@pytest.fixture
async def checked(
    ledger_db: Database, anvil: AnvilChain
) -> AsyncIterator[tuple[ReconciliationJob, AssetRegistry]]:
    registry = AssetRegistry.from_mapping(MAINNET).overlay(anvil.assets_overlay)
    client = EvmClient(anvil.rpc_url)
    yield ReconciliationJob(ledger_db, registry, {"ethereum": client}, concurrency=4), registry
    await client.close()


async def announced(db: Database, routing_key: str) -> list[Event]:
    return [Event.model_validate(row.body) for row in await outbox(db, routing_key)]


async def test_each_run_and_each_resolution_is_announced(
    ledger_db: Database, anvil: AnvilChain, checked: tuple[ReconciliationJob, AssetRegistry]
) -> None:
    job, registry = checked
    address = fresh_address()
    await pay(anvil, address, 3 * USDT)
    await bury(anvil, registry)
    await report(ledger_db, anvil, registry, address, 3 * USDT)

    opened = await job.run()
    await book(ledger_db, anvil, address, 3 * USDT)
    closed = await job.run()

    runs = await announced(ledger_db, "reconciliation.run_completed")
    assert [e.subject for e in runs] == [opened.run_id, closed.run_id]
    first, second = (parse_payload(e, ReconciliationRunCompleted) for e in runs)
    assert (first.status, first.addresses_checked, first.discrepancies_opened) == (
        "completed",
        1,
        1,
    )
    assert second.discrepancies_resolved == 1
    assert second.finished_at >= second.started_at
    assert second.networks["ethereum"]["addresses"] == 1
    [found] = await discrepancies(ledger_db)
    [resolution] = await announced(ledger_db, "reconciliation.discrepancy_resolved")
    [opening] = await announced(ledger_db, "reconciliation.discrepancy")
    assert resolution.subject == opening.subject == found.id
    assert resolution.sequence > opening.sequence
    resolved = parse_payload(resolution, DiscrepancyResolved)
    assert (resolved.address, resolved.resolved_run_id) == (address, closed.run_id)
