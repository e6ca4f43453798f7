"""Recording reconciliation: runs, the holdings to check, the comparison of chain amounts
with the ledger, and the discrepancies it opens and resolves. Functions only flush; the
job owns the transactions (and never holds one while it waits for a chain node)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_, union
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.bus import add_to_outbox
from stablegate_common.core.ids import new_id
from stablegate_common.events import make_event
from stablegate_common.events.contracts import (
    DiscrepancyFound,
    DiscrepancyResolved,
    ReconciliationRunCompleted,
)
from stablegate_reconciler.ledger import repository as ledger_repository
from stablegate_reconciler.ledger.models import Account, Booking, ObservedTransfer
from stablegate_reconciler.reconciliation.models import Discrepancy, ReconciliationRun
from stablegate_reconciler.reconciliation.rules import Holding, verdict

log = logging.getLogger(__name__)

PRODUCER = "reconciler"
_CHUNK = 5000
# How long a gap explained by an outgoing transfer in broadcast is excused: from when the
# ledger learned of it, or last saw it mined. Past that, the gap is a discrepancy (the
# gateway's StablegateOutgoingStuckInBroadcast alert names the transfer).
IN_FLIGHT_GRACE_SECONDS = 900.0


@dataclass
class Tally:
    checked: int = 0
    mismatches: int = 0
    opened: int = 0
    resolved: int = 0
    pending: int = 0  # apart by exactly what outgoing transfers in flight explain

    def add(self, other: Tally) -> None:
        self.checked += other.checked
        self.mismatches += other.mismatches
        self.pending += other.pending
        self.opened += other.opened
        self.resolved += other.resolved


async def start_run(session: AsyncSession) -> str:
    run = ReconciliationRun(id=new_id("rec"), status="running", networks={})
    session.add(run)
    await session.flush()
    return run.id


async def finish_run(
    session: AsyncSession,
    run_id: str,
    *,
    status: str,
    tally: Tally,
    networks: Mapping[str, Any],
) -> None:
    run = await session.get_one(ReconciliationRun, run_id)
    run.status = status
    run.finished_at = await session.scalar(select(func.now()))
    run.addresses_checked = tally.checked
    run.discrepancies = tally.mismatches
    run.discrepancies_opened = tally.opened
    run.discrepancies_resolved = tally.resolved
    run.networks = dict(networks)
    await session.flush()
    await session.refresh(run, attribute_names=["started_at", "finished_at"])
    assert run.finished_at is not None
    # One event per run (sequence 1: a run ends once), so that the dashboard can list runs.
    payload = ReconciliationRunCompleted(
        run_id=run.id,
        status=status,  # validated: one of the CHECK constraint's values
        started_at=run.started_at,
        finished_at=run.finished_at,
        addresses_checked=tally.checked,
        discrepancies=tally.mismatches,
        discrepancies_opened=tally.opened,
        discrepancies_resolved=tally.resolved,
        networks={name: dict(report) for name, report in networks.items()},
    )
    add_to_outbox(session, make_event(payload, producer=PRODUCER, subject=run.id, sequence=1))


async def holdings_to_check(session: AsyncSession) -> dict[str, list[Holding]]:
    """Every (network, asset, deposit address) the ledger holds funds for or a watcher saw
    funds arrive at, by network. Transfers of contracts outside the registry are not
    included.

    A deposit address is one an intent was paid at (it has a booking) or a watcher watches
    (it has observed transfers). Other holdings of ours in the books, a payout wallet's,
    are not compared: the books see what leaves them, not the top-ups from outside the
    ledger that funded them, so their balance says nothing the chain could confirm."""
    deposit_addresses = union(
        select(Booking.network, Booking.deposit_address),
        select(ObservedTransfer.network, ObservedTransfer.to_address),
    ).subquery()
    booked = (
        select(Account.network, Account.asset, Account.address)
        .join(
            deposit_addresses,
            (deposit_addresses.c.network == Account.network)
            & (deposit_addresses.c.deposit_address == Account.address),
        )
        .where(Account.kind == "asset")
    )
    observed = select(
        ObservedTransfer.network, ObservedTransfer.asset, ObservedTransfer.to_address
    ).where(ObservedTransfer.asset.is_not(None))
    rows: Sequence[Any] = (await session.execute(union(booked, observed))).all()
    by_network: dict[str, list[Holding]] = defaultdict(list)
    for network, asset, address in rows:
        by_network[network].append(Holding(network, asset, address))
    return {network: sorted(items) for network, items in by_network.items()}


async def ledger_amounts(session: AsyncSession, holdings: Iterable[Holding]) -> dict[Holding, int]:
    """What the ledger says each address holds (0 when it has no account for it)."""
    wanted = list(holdings)
    amounts = dict.fromkeys(wanted, 0)
    # Chunked: three bind parameters per holding, and PostgreSQL takes at most 32,767.
    for start in range(0, len(wanted), _CHUNK):
        keys = [(h.network, h.asset, h.address) for h in wanted[start : start + _CHUNK]]
        rows = await session.execute(
            select(
                Account.network, Account.asset, Account.address, Account.balance_base_units
            ).where(
                Account.kind == "asset",
                tuple_(Account.network, Account.asset, Account.address).in_(keys),
            )
        )
        for network, asset, address, balance in rows:
            amounts[Holding(network, asset, address or "")] = int(balance)
    return amounts


async def compare(
    session: AsyncSession,
    *,
    run_id: str,
    network: str,
    block: int,
    chain: Mapping[Holding, int],
    in_flight_grace_seconds: float = IN_FLIGHT_GRACE_SECONDS,
) -> Tally:
    """Compare chain amounts of one network at `block` with the ledger; open, update and
    resolve discrepancies, and announce each newly opened one. A gap that outgoing
    transfers explain exactly (mined, not booked yet; or booked, mined after `block`) is
    counted as pending, not opened."""
    ledger = await ledger_amounts(session, chain)
    in_flight, ahead = await ledger_repository.unbooked_outflows(
        session, network, block=block, grace_seconds=in_flight_grace_seconds
    )
    open_rows = (
        await session.execute(
            select(Discrepancy)
            .where(Discrepancy.network == network, Discrepancy.status == "open")
            .with_for_update()
        )
    ).scalars()
    already = {Holding(d.network, d.asset, d.address): d for d in open_rows}
    tally = Tally()
    for holding in sorted(chain):
        tally.checked += 1
        key = (holding.asset, holding.address)
        outcome = verdict(
            ledger=ledger[holding],
            chain=chain[holding],
            already_open=holding in already,
            in_flight=in_flight.get(key, ()),
            booked_ahead=ahead.get(key, 0),
        )
        if outcome == "pending":
            tally.pending += 1
        if outcome in ("open", "still_open"):
            tally.mismatches += 1
        if outcome == "open":
            _open(session, run_id, holding, block, ledger[holding], chain[holding])
            tally.opened += 1
        elif outcome == "still_open":
            found = already[holding]
            found.ledger_base_units, found.chain_base_units = ledger[holding], chain[holding]
            found.block_number, found.last_run_id = block, run_id
            found.updated_at = func.now()
        elif outcome == "resolve":
            _resolve(session, already[holding], run_id)
            tally.resolved += 1
    await session.flush()
    return tally


def _open(
    session: AsyncSession, run_id: str, holding: Holding, block: int, ledger: int, chain: int
) -> None:
    found = Discrepancy(
        id=new_id("disc"),
        network=holding.network,
        asset=holding.asset,
        address=holding.address,
        status="open",
        ledger_base_units=ledger,
        chain_base_units=chain,
        block_number=block,
        opened_run_id=run_id,
        last_run_id=run_id,
    )
    session.add(found)
    log.warning(
        "ledger and chain disagree",
        extra={
            "discrepancy": found.id,
            "network": holding.network,
            "asset": holding.asset,
            "address": holding.address,
            "ledger_base_units": str(ledger),
            "chain_base_units": str(chain),
            "block": block,
        },
    )
    payload = DiscrepancyFound(
        network=holding.network,
        asset=holding.asset,
        address=holding.address,
        ledger_base_units=ledger,
        chain_base_units=chain,
    )
    add_to_outbox(session, make_event(payload, producer=PRODUCER, subject=found.id, sequence=1))


def _resolve(session: AsyncSession, found: Discrepancy, run_id: str) -> None:
    found.status = "resolved"
    found.resolved_run_id = found.last_run_id = run_id
    found.resolved_at = found.updated_at = func.now()
    payload = DiscrepancyResolved(
        network=found.network, asset=found.asset, address=found.address, resolved_run_id=run_id
    )
    # Sequence 2: after the `reconciliation.discrepancy` (1) that opened it.
    add_to_outbox(session, make_event(payload, producer=PRODUCER, subject=found.id, sequence=2))
    log.info(
        "discrepancy resolved",
        extra={"discrepancy": found.id, "network": found.network, "address": found.address},
    )


async def open_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(Discrepancy.network, func.count())
        .where(Discrepancy.status == "open")
        .group_by(Discrepancy.network)
    )
    return {network: int(count) for network, count in rows}
