"""The events a watcher publishes, built from its rows: `transfer.detected|confirmed|
reverted` (subject `"{network}:{tx_hash}:{log_index}"`, sequence from the row) and
`chain.head`."""

from __future__ import annotations

import time
from datetime import datetime

from stablegate_common.core.assets import Network
from stablegate_common.events import Event, make_event
from stablegate_common.events.contracts import (
    ChainHead,
    ChainTransferFields,
    TransferConfirmed,
    TransferDetected,
    TransferReverted,
)
from stablegate_common.watcher.repository import TransferRow

_EVENT_FOR_STATUS: dict[str, type[ChainTransferFields]] = {
    "pending": TransferDetected,
    "confirmed": TransferConfirmed,
    "reverted": TransferReverted,
}


def transfer_subject(network: str, tx_hash: str, log_index: int) -> str:
    return f"{network}:{tx_hash}:{log_index}"


def transfer_event(row: TransferRow, network: Network, *, required: int, producer: str) -> Event:
    """The event that announces the row's current status (pending → transfer.detected)."""
    payload_cls = _EVENT_FOR_STATUS[row.status]
    payload = payload_cls(
        network=network.name,
        chain_id=network.chain_id,
        token_contract=row.token_contract,
        tx_hash=row.tx_hash,
        log_index=row.log_index,
        block_number=row.block_number,
        block_hash=row.block_hash,
        block_timestamp=row.block_timestamp,
        from_address=row.from_address,
        to_address=row.to_address,
        amount_base_units=row.amount,
        confirmations=row.confirmations,
        confirmations_required=required,
    )
    return make_event(
        payload,
        producer=producer,
        subject=transfer_subject(network.name, row.tx_hash, row.log_index),
        sequence=row.sequence,
    )


def head_event(
    network: str, *, head: int, scanned: int, head_timestamp: datetime, producer: str
) -> Event:
    """`chain.head`; its sequence is wall-clock milliseconds, so that the newest view wins
    even across a scanner hand-over and when only the cursor moved."""
    payload = ChainHead(
        network=network,
        head_block=head,
        scanned_block=max(0, scanned),
        head_timestamp=head_timestamp,
    )
    return make_event(
        payload, producer=producer, subject=network, sequence=time.time_ns() // 1_000_000
    )
