"""Prometheus metrics of outgoing transfers: how many are in each state (refreshed from
the table, so every replica reports the same), what the network charged, and broadcasts.
Fees are base units of the native coin (wei, sun) counted as integers."""

from __future__ import annotations

from prometheus_client import Counter, Gauge
from sqlalchemy import func, select

from stablegate_common.db import Database
from stablegate_gateway.outgoing.models import OutgoingTransfer
from stablegate_gateway.outgoing.states import OutgoingState

TRANSFERS = Gauge(
    "stablegate_outgoing_transfers",
    "Outgoing transfers by network, purpose and state",
    ["network", "purpose", "state"],
)
STUCK_IN_BROADCAST = Gauge(
    "stablegate_outgoing_broadcast_oldest_seconds",
    "Age of the oldest outgoing transfer broadcast and not mined yet (0: none)",
    ["network"],
)
FEE_PAID = Counter(
    "stablegate_outgoing_fee_paid_base_units_total",
    "Network fees paid by confirmed or reverted outgoing transfers (native base units)",
    ["network"],
)
GAS_USED = Counter(
    "stablegate_outgoing_gas_used_total", "Gas used by outgoing EVM transfers", ["network"]
)
ENERGY_USED = Counter(
    "stablegate_outgoing_energy_used_total", "Energy used by outgoing Tron transfers", ["network"]
)
BROADCASTS = Counter(
    "stablegate_outgoing_broadcasts_total",
    "Sends of signed outgoing transfers (result: sent | error)",
    ["network", "result"],
)
FOUND_MINED = Counter(
    "stablegate_outgoing_found_mined_total",
    "Outgoing transfers given up (replaced, canceled, failed unmined) and then found mined "
    "(state: the one it was given up in)",
    ["network", "state"],
)
CANCELING_UNEXPLAINED = Gauge(
    "stablegate_outgoing_canceling_unexplained",
    "Canceling EVM transfers with no hash (canceled awaiting their signature) whose nonce "
    "was used by a transaction that is not ours: maybe the canceled request, signed and "
    "broadcast out of band (an operator must look)",
    ["network"],
)
LOOP_CRASHES = Counter(
    "stablegate_outgoing_loop_crashes_total",
    "Unexpected errors in the broadcaster or re-plan loop (logged with a traceback; retried)",
    ["loop"],
)


def count_fees(network: str, *, fee: int | None, gas: int | None, energy: int | None) -> None:
    """Once per transfer reaching confirmed or failed with a receipt."""
    if fee:
        FEE_PAID.labels(network).inc(fee)
    if gas:
        GAS_USED.labels(network).inc(gas)
    if energy:
        ENERGY_USED.labels(network).inc(energy)


_T = OutgoingTransfer


async def refresh(db: Database) -> None:
    """Set the state gauge and the oldest unmined broadcast's age from the table."""
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(
                    OutgoingTransfer.network,
                    OutgoingTransfer.purpose,
                    OutgoingTransfer.state,
                    func.count(),
                ).group_by(
                    OutgoingTransfer.network, OutgoingTransfer.purpose, OutgoingTransfer.state
                )
            )
        ).all()
        ages = (
            await session.execute(
                select(
                    OutgoingTransfer.network,
                    func.extract(
                        "epoch", func.now() - func.min(OutgoingTransfer.first_broadcast_at)
                    ),
                )
                .where(OutgoingTransfer.state == OutgoingState.BROADCAST)
                .where(OutgoingTransfer.block_number.is_(None))
                .group_by(OutgoingTransfer.network)
            )
        ).all()
    TRANSFERS.clear()
    for network, purpose, state, count in rows:
        TRANSFERS.labels(network, purpose, state).set(count)
    STUCK_IN_BROADCAST.clear()
    for network, age in ages:
        STUCK_IN_BROADCAST.labels(network).set(int(age or 0))
