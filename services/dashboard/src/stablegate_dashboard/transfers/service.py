"""Applying watcher reports (`transfer.*`) to the transfer read model."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.events import Event
from stablegate_common.events.contracts import ChainTransferFields
from stablegate_dashboard.transfers.models import TransferView

STATUS_BY_EVENT = {
    "transfer.detected": "detected",
    "transfer.confirmed": "confirmed",
    "transfer.reverted": "reverted",
}

_KEY = ("network", "tx_hash", "log_index")


async def apply_report(session: AsyncSession, event: Event, report: ChainTransferFields) -> bool:
    """Keep the newest report of one Transfer log; False when an older one arrived late."""
    values = {
        "network": report.network,
        "tx_hash": report.tx_hash,
        "log_index": report.log_index,
        "token_contract": report.token_contract,
        "from_address": report.from_address,
        "to_address": report.to_address,
        "amount_base_units": report.amount_base_units,
        "block_number": report.block_number,
        "block_hash": report.block_hash,
        "block_timestamp": report.block_timestamp,
        "confirmations": report.confirmations,
        "confirmations_required": report.confirmations_required,
        "status": STATUS_BY_EVENT[event.type],
        "updated_at": event.occurred_at,
        "sequence": event.sequence,
    }
    row = insert(TransferView).values(**values)
    stmt = row.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={k: row.excluded[k] for k in values if k not in _KEY},
        where=TransferView.sequence < row.excluded.sequence,
    ).returning(TransferView.tx_hash)
    return (await session.execute(stmt)).first() is not None
