"""The reconciler as the real process: `migrate`, then `serve` configured by environment
variables against anvil; health, readiness and metrics answer, an intent snapshot published
on the bus is booked and its balance.updated comes back on the bus, the schedule runs
reconciliation, and SIGTERM stops it cleanly."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from stablegate_common.config import BusSettings, DatabaseSettings
from stablegate_common.db import Database
from stablegate_common.events import Event
from stablegate_reconciler.ledger.consumers import (
    INTENTS_CONSUMER,
    OUTGOING_CONSUMER,
    TRANSFERS_CONSUMER,
)
from stablegate_reconciler.ledger.models import JournalEntry
from stablegate_reconciler.reconciliation.models import ReconciliationRun
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.bus import BusFactory, delete_bus_topology, eventually
from tests.reconciler.factories import USDT, intent_event, transfer
from tests.reconciler.processes import free_port, run_command, service_env, serving

MODULE = "stablegate_reconciler.cli"


def scrape(text: str) -> dict[tuple[str, str], float]:
    """(sample name, network or job name) → value of successful outcomes, from /metrics."""
    samples: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("outcome", "success") != "success":
                continue
            key = sample.labels.get("network") or sample.labels.get("job_name") or ""
            samples[(sample.name, key)] = sample.value
    return samples


@pytest.fixture
async def service_queues(bus_settings: BusSettings) -> AsyncIterator[None]:
    """The service's own queues outlive it (quorum queues): delete them afterwards."""
    yield
    await delete_bus_topology(
        bus_settings.url.get_secret_value(),
        exchanges=[],
        queues=[
            f"{bus_settings.exchange}.reconciler.{name}"
            for name in (INTENTS_CONSUMER, TRANSFERS_CONSUMER, OUTGOING_CONSUMER)
        ],
    )


@pytest.mark.usefixtures("service_queues")
async def test_the_reconciler_process_books_publishes_and_reconciles(
    db_settings: DatabaseSettings,
    bus_settings: BusSettings,
    bus_factory: BusFactory,
    anvil: AnvilChain,
    tmp_path: Path,
) -> None:
    env = service_env(
        db_settings,
        bus_settings,
        free_port(),
        {
            "STABLEGATE_ASSETS_FILE": str(anvil.assets_file),
            "RECONCILER_RPC_URLS": json.dumps({"ethereum": anvil.rpc_url}),
            "RECONCILER_INTERVAL_SECONDS": "1",
        },
    )
    await run_command(MODULE, "migrate", env)
    gateway = await bus_factory(service="test-gateway")
    received: list[Event] = []

    async def collect(event: Event) -> None:
        received.append(event)

    await gateway.consume("balances", ["balance.updated"], collect)
    address = fresh_address()
    await anvil.transfer(anvil.usdt, address, 9 * USDT)
    await anvil.mine(5)
    snapshot = intent_event(
        transfers=[transfer(9 * USDT)],
        token_contract=anvil.usdt,
        deposit_address=address,
        amount_base_units=9 * USDT,
    )
    db = Database(db_settings)
    try:
        async with (
            serving(MODULE, env, tmp_path / "reconciler.log") as served,
            httpx.AsyncClient(base_url=served.url, timeout=5) as http,
        ):
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            ready = (await http.get("/readyz")).json()
            assert ready["checks"] == {"database": "ok", "bus": "ok"}

            await gateway.publish([snapshot])

            await eventually(lambda: len(received) == 1, timeout=20)
            assert received[0].data["available_base_units"] == str(9 * USDT)
            async with db.sessions() as session:
                booked = await session.scalar(select(func.count()).select_from(JournalEntry))
            assert booked == 1

            async def reconciled() -> bool:
                async with db.sessions() as session:
                    runs = await session.scalars(
                        select(ReconciliationRun).where(
                            ReconciliationRun.status == "completed",
                            ReconciliationRun.addresses_checked == 1,
                        )
                    )
                    return runs.first() is not None

            await eventually(reconciled, timeout=20)

            async def scraped() -> bool:
                # The run row commits a moment before the job's counter moves.
                samples = scrape((await http.get("/metrics")).text)
                return samples.get(("stablegate_job_runs_total", "reconcile"), 0) >= 1

            await eventually(scraped, timeout=10)
            samples = scrape((await http.get("/metrics")).text)
            assert samples[("stablegate_reconciler_open_discrepancies", "ethereum")] == 0
    finally:
        await db.dispose()

    assert served.exit_code == 0
    lines = served.log_lines()
    [posted] = [line for line in lines if line["message"] == "journal entry posted"]
    assert posted["intent_id"] == snapshot.data["intent_id"]
    assert posted["service"] == "reconciler"
    assert lines[-1]["message"] == "service stopped"
