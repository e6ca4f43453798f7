"""The reconciliation job: every interval, on one replica (the Scheduler's advisory
lock), compare what each chain holds at the confirmed depth with the ledger.

The job owns its transactions: a short one to start the run and list the holdings, one
per network to compare after the chain reads are done (no transaction is open while a
node is asked), and one to close the run. A network whose node fails is reported in the
run and left alone: its discrepancies are neither opened nor resolved on missing data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from stablegate_common.chains import ChainError
from stablegate_common.core.assets import AssetRegistry
from stablegate_common.core.errors import UnknownAsset, UnknownNetwork
from stablegate_common.db import Database
from stablegate_reconciler.reconciliation import service
from stablegate_reconciler.reconciliation.chain import (
    BalanceReader,
    confirmed_block,
    read_balances,
)
from stablegate_reconciler.reconciliation.rules import Holding

log = logging.getLogger(__name__)

JOB_NAME = "reconcile"

OPEN_DISCREPANCIES = Gauge(
    "stablegate_reconciler_open_discrepancies",
    "Addresses where the ledger and the chain disagree, by network",
    ["network"],
)
RUNS = Counter(
    "stablegate_reconciler_runs_total",
    "Reconciliation runs by status (completed, partial, failed)",
    ["status"],
)
LAST_COMPLETED = Gauge(
    "stablegate_reconciler_last_completed_timestamp_seconds",
    "Unix time at which a run last checked every configured network",
)


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: str
    tally: service.Tally
    networks: dict[str, Any]


class ReconciliationJob:
    def __init__(
        self,
        db: Database,
        registry: AssetRegistry,
        readers: Mapping[str, BalanceReader],
        *,
        concurrency: int = 8,
        batch_size: int = 100,
        in_flight_grace_seconds: float = service.IN_FLIGHT_GRACE_SECONDS,
    ) -> None:
        self.db = db
        self.registry = registry
        self.readers = dict(readers)
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.in_flight_grace_seconds = in_flight_grace_seconds

    async def __call__(self) -> None:
        await self.run()

    async def run(self) -> RunResult:
        async with self.db.transaction() as session:
            run_id = await service.start_run(session)
            holdings = await service.holdings_to_check(session)
        try:
            result = await self._check_networks(run_id, holdings)
        except Exception:
            async with self.db.transaction() as session:
                await service.finish_run(
                    session, run_id, status="failed", tally=service.Tally(), networks={}
                )
            RUNS.labels("failed").inc()
            raise
        await self.refresh_gauge()
        return result

    async def _check_networks(
        self, run_id: str, holdings: Mapping[str, list[Holding]]
    ) -> RunResult:
        tally = service.Tally()
        report: dict[str, Any] = {}
        for network in sorted(holdings):
            try:
                block, chain = await self._read_network(network, holdings[network])
            except (ChainError, _NotCheckable) as exc:
                report[network] = {"error": str(exc)}
                log.warning(
                    "network not reconciled",
                    extra={"network": network, "error": str(exc), "run": run_id},
                )
                continue
            async with self.db.transaction() as session:
                found = await service.compare(
                    session,
                    run_id=run_id,
                    network=network,
                    block=block,
                    chain=chain,
                    in_flight_grace_seconds=self.in_flight_grace_seconds,
                )
            tally.add(found)
            # `pending`: holdings apart by exactly what outgoing transfers in flight explain.
            report[network] = {"block": block, "addresses": found.checked, "pending": found.pending}
        status = "partial" if any("error" in r for r in report.values()) else "completed"
        async with self.db.transaction() as session:
            await service.finish_run(session, run_id, status=status, tally=tally, networks=report)
        RUNS.labels(status).inc()
        if status == "completed":
            LAST_COMPLETED.set(time.time())
        log.info(
            "reconciliation run finished",
            extra={
                "run": run_id,
                "status": status,
                "addresses": tally.checked,
                "mismatches": tally.mismatches,
                "pending": tally.pending,
                "opened": tally.opened,
                "resolved": tally.resolved,
            },
        )
        return RunResult(run_id, status, tally, report)

    async def _read_network(
        self, network: str, holdings: list[Holding]
    ) -> tuple[int, dict[Holding, int]]:
        reader = self.readers.get(network)
        if reader is None:
            raise _NotCheckable(f"no RPC URL configured for {network}")
        try:
            spec = self.registry.network(network)
            contracts = {h.asset: spec.asset(h.asset).contract for h in holdings}
        except (UnknownNetwork, UnknownAsset) as exc:
            raise _NotCheckable(exc.message) from exc
        block = confirmed_block(await reader.head(), spec.confirmations)
        chain = await read_balances(
            reader,
            holdings,
            contracts,
            block=block,
            concurrency=self.concurrency,
            batch_size=self.batch_size,
        )
        return block, chain

    async def refresh_gauge(self) -> None:
        async with self.db.transaction() as session:
            counts = await service.open_counts(session)
        for network in {*self.registry.names(), *counts}:
            OPEN_DISCREPANCIES.labels(network).set(counts.get(network, 0))


class _NotCheckable(Exception):
    """A network this process cannot check (no node configured, asset left the registry)."""
