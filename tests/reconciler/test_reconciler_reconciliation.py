"""Reconciliation against a real chain (anvil), the real PostgreSQL and the ledger:
agreement records nothing, funds the ledger does not know open a discrepancy (row, gauge,
event), a later agreeing run resolves it, in-flight payments are not discrepancies, and a
node that fails leaves its network's discrepancies alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from stablegate_common.chains.evm import EvmClient
from stablegate_common.config import DatabaseSettings
from stablegate_common.core.assets import MAINNET, AssetRegistry
from stablegate_common.db import Database
from stablegate_common.scheduling import Scheduler
from stablegate_reconciler.reconciliation.chain import read_balances
from stablegate_reconciler.reconciliation.jobs import JOB_NAME, ReconciliationJob
from stablegate_reconciler.reconciliation.models import Discrepancy, ReconciliationRun
from stablegate_reconciler.reconciliation.rules import Holding
from tests.conftest import unique
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.reconciler.factories import USDT, chain_transfer_event, intent_event, transfer
from tests.reconciler.support import deliver, deliver_transfer, outbox


@pytest.fixture
def registry(anvil: AnvilChain) -> AssetRegistry:
    return AssetRegistry.from_mapping(MAINNET).overlay(anvil.assets_overlay)


@pytest.fixture
async def reader(anvil: AnvilChain) -> AsyncIterator[EvmClient]:
    client = EvmClient(anvil.rpc_url)
    yield client
    await client.close()


@pytest.fixture
def job(ledger_db: Database, registry: AssetRegistry, reader: EvmClient) -> ReconciliationJob:
    # Batches of two: a run with three holdings or more reads several batches.
    return ReconciliationJob(ledger_db, registry, {"ethereum": reader}, concurrency=4, batch_size=2)


def open_gauge(network: str = "ethereum") -> float | None:
    return REGISTRY.get_sample_value(
        "stablegate_reconciler_open_discrepancies", {"network": network}
    )


async def bury(anvil: AnvilChain, registry: AssetRegistry) -> None:
    """Mine until the newest block has the network's confirmations on top of it."""
    await anvil.mine(registry.network("ethereum").confirmations - 1)


async def pay(anvil: AnvilChain, to: str, amount: int) -> str:
    return await anvil.transfer(anvil.usdt, to, amount)


async def book(db: Database, anvil: AnvilChain, address: str, amount: int) -> None:
    """The gateway's snapshot of an intent paid `amount` at `address`, delivered."""
    event = intent_event(
        transfers=[transfer(amount)],
        token_contract=anvil.usdt,
        deposit_address=address,
        amount_base_units=amount,
    )
    await deliver(db, event)


async def report(
    db: Database, anvil: AnvilChain, registry: AssetRegistry, address: str, amount: int
) -> None:
    """A watcher's report of a transfer to `address` that no intent claims."""
    event = chain_transfer_event(
        "confirmed", token_contract=anvil.usdt, to_address=address, amount_base_units=amount
    )
    await deliver_transfer(db, event, registry)


async def discrepancies(db: Database) -> list[Discrepancy]:
    async with db.sessions() as session:
        return list(await session.scalars(select(Discrepancy).order_by(Discrepancy.opened_at)))


async def run_row(db: Database, run_id: str) -> ReconciliationRun:
    async with db.sessions() as session:
        return await session.get_one(ReconciliationRun, run_id)


async def test_ledger_equal_to_chain_records_no_discrepancy(
    ledger_db: Database, anvil: AnvilChain, registry: AssetRegistry, job: ReconciliationJob
) -> None:
    address = fresh_address()
    await pay(anvil, address, 5 * USDT)
    await bury(anvil, registry)
    await book(ledger_db, anvil, address, 5 * USDT)

    result = await job.run()

    assert result.status == "completed"
    assert (result.tally.checked, result.tally.mismatches) == (1, 0)
    assert await discrepancies(ledger_db) == []
    assert open_gauge() == 0
    run = await run_row(ledger_db, result.run_id)
    assert run.status == "completed"
    assert run.finished_at is not None
    assert run.addresses_checked == 1
    depth = registry.network("ethereum").confirmations
    assert run.networks["ethereum"]["block"] == await anvil.block_number() - depth + 1


async def test_funds_the_ledger_does_not_know_open_a_discrepancy_until_a_run_agrees(
    ledger_db: Database, anvil: AnvilChain, registry: AssetRegistry, job: ReconciliationJob
) -> None:
    address = fresh_address()
    await pay(anvil, address, 7 * USDT)
    await bury(anvil, registry)
    await report(ledger_db, anvil, registry, address, 7 * USDT)

    first = await job.run()

    [found] = await discrepancies(ledger_db)
    assert (found.status, found.network, found.asset, found.address) == (
        "open",
        "ethereum",
        "USDT",
        address,
    )
    assert (found.ledger_base_units, found.chain_base_units) == (0, 7 * USDT)
    assert found.opened_run_id == first.run_id
    assert open_gauge() == 1
    [announced] = await outbox(ledger_db, "reconciliation.discrepancy")
    assert announced.body["data"]["address"] == address
    assert announced.body["data"]["chain_base_units"] == str(7 * USDT)
    assert (await run_row(ledger_db, first.run_id)).discrepancies_opened == 1

    second = await job.run()  # still apart: the same discrepancy, no second announcement

    [still] = await discrepancies(ledger_db)
    assert (still.id, still.status, still.last_run_id) == (found.id, "open", second.run_id)
    assert len(await outbox(ledger_db, "reconciliation.discrepancy")) == 1

    await book(ledger_db, anvil, address, 7 * USDT)  # the gateway attributes it after all
    third = await job.run()

    [resolved] = await discrepancies(ledger_db)
    assert (resolved.id, resolved.status) == (found.id, "resolved")
    assert resolved.resolved_run_id == third.run_id
    assert resolved.resolved_at is not None
    assert open_gauge() == 0
    assert third.tally.resolved == 1


async def test_a_payment_not_yet_at_the_confirmed_depth_is_not_a_discrepancy(
    ledger_db: Database, anvil: AnvilChain, registry: AssetRegistry, job: ReconciliationJob
) -> None:
    address = fresh_address()
    await pay(anvil, address, 3 * USDT)  # in the newest block: no confirmations on top yet
    await report(ledger_db, anvil, registry, address, 3 * USDT)

    in_flight = await job.run()

    assert (in_flight.tally.checked, in_flight.tally.mismatches) == (1, 0)
    assert await discrepancies(ledger_db) == []

    await bury(anvil, registry)  # now final, and still not in the ledger
    buried = await job.run()

    assert buried.tally.opened == 1


async def test_a_failing_node_leaves_its_discrepancies_alone(
    ledger_db: Database, anvil: AnvilChain, registry: AssetRegistry, job: ReconciliationJob
) -> None:
    address = fresh_address()
    await pay(anvil, address, 2 * USDT)
    await bury(anvil, registry)
    await report(ledger_db, anvil, registry, address, 2 * USDT)
    await job.run()
    await book(ledger_db, anvil, address, 2 * USDT)
    down = EvmClient("http://127.0.0.1:9", timeout_seconds=2)
    try:
        blind = ReconciliationJob(ledger_db, registry, {"ethereum": down})
        result = await blind.run()
    finally:
        await down.close()

    assert result.status == "partial"
    assert "error" in result.networks["ethereum"]
    assert (await run_row(ledger_db, result.run_id)).status == "partial"
    [found] = await discrepancies(ledger_db)
    assert found.status == "open"  # the ledger now agrees, but nobody read the chain


async def test_a_network_without_a_node_is_reported_not_checked(
    ledger_db: Database, anvil: AnvilChain, registry: AssetRegistry
) -> None:
    await report(ledger_db, anvil, registry, fresh_address(), USDT)
    unconfigured = ReconciliationJob(ledger_db, registry, {})

    result = await unconfigured.run()

    assert result.status == "partial"
    assert result.networks == {"ethereum": {"error": "no RPC URL configured for ethereum"}}
    assert result.tally.checked == 0


async def test_the_scheduler_runs_the_job_under_its_lock(
    ledger_db: Database, db_settings: DatabaseSettings, job: ReconciliationJob
) -> None:
    scheduler = Scheduler(db_settings, ledger_db, service=unique("reconciler"))
    scheduler.add_interval_job(JOB_NAME, job, 3600)
    try:
        assert await scheduler.run_now(JOB_NAME) == "success"
    finally:
        await scheduler.shutdown()

    async with ledger_db.sessions() as session:
        [run] = list(await session.scalars(select(ReconciliationRun)))
    assert run.status == "completed"


async def test_balances_are_read_in_batches_and_match_single_reads(
    anvil: AnvilChain, reader: EvmClient
) -> None:
    holders = [fresh_address() for _ in range(5)]
    for number, holder in enumerate(holders, start=1):
        await anvil.transfer(anvil.usdt, holder, number)
    holdings = [Holding("ethereum", "USDT", h) for h in holders]
    block = await anvil.block_number()
    calls: list[int] = []
    original = reader.token_balances

    async def counted(queries: Any, block: int | None = None) -> list[int]:
        calls.append(len(queries))
        return await original(queries, block=block)

    reader.token_balances = counted  # type: ignore[method-assign]
    found = await read_balances(
        reader, holdings, {"USDT": anvil.usdt}, block=block, concurrency=2, batch_size=2
    )
    assert sorted(calls) == [1, 2, 2]  # five holders, at most two per JSON-RPC batch
    assert found == {h: n for n, h in enumerate(holdings, start=1)}
