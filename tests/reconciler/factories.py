"""Small event factories with keyword overrides, shared by the reconciler and dashboard
suites: intent snapshots and outgoing-transfer updates as the gateway publishes them and
chain reports as watchers do."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from stablegate_common.core.ids import new_id
from stablegate_common.events import Event, make_event
from stablegate_common.events.contracts import (
    ChainHead,
    IntentCreated,
    IntentTransfer,
    IntentUpdated,
    OutgoingTransferUpdated,
    TransferConfirmed,
    TransferDetected,
    TransferReverted,
)

USDT = 1_000_000  # one USDT in base units (6 decimals)


def evm_address() -> str:
    return "0x" + secrets.token_hex(20)


def tx_hash() -> str:
    return "0x" + secrets.token_hex(32)


def transfer(
    amount: int = 25 * USDT, status: str = "confirmed", **overrides: Any
) -> IntentTransfer:
    values: dict[str, Any] = {
        "transfer_id": new_id("tr"),
        "tx_hash": tx_hash(),
        "log_index": 0,
        "block_number": 100,
        "from_address": evm_address(),
        "amount_base_units": amount,
        "status": status,
    }
    values.update(overrides)
    return IntentTransfer(**values)


def with_status(t: IntentTransfer, status: str) -> IntentTransfer:
    return t.model_copy(update={"status": status})


def intent_event(
    *,
    intent_id: str | None = None,
    sequence: int = 1,
    transfers: list[IntentTransfer] | None = None,
    created: bool = False,
    **overrides: Any,
) -> Event:
    now = datetime.now(UTC)
    listed = transfers or []
    confirmed = sum(t.amount_base_units for t in listed if t.status == "confirmed")
    received = sum(t.amount_base_units for t in listed if t.status != "reverted")
    values: dict[str, Any] = {
        "intent_id": intent_id or new_id("pi"),
        "merchant_id": "mer_" + secrets.token_hex(4),
        "status": "paid" if confirmed else "awaiting_payment",
        "previous_status": None,
        "exception": None,
        "network": "ethereum",
        "asset": "USDT",
        "token_contract": "0xdac17f958d2ee523a2206206994597c13d831ec7",
        "decimals": 6,
        "deposit_address": evm_address(),
        "amount_base_units": 25 * USDT,
        "amount_received_base_units": received,
        "amount_confirmed_base_units": confirmed,
        "reference": "order-1",
        "created_at": now,
        "expires_at": now + timedelta(minutes=30),
        "transfers": listed,
    }
    values.update(overrides)
    payload = (IntentCreated if created else IntentUpdated)(**values)
    return make_event(payload, producer="gateway", subject=values["intent_id"], sequence=sequence)


def next_snapshot(previous: Event, *, sequence: int, transfers: list[IntentTransfer]) -> Event:
    """The gateway's next snapshot of the same intent, with these transfers."""
    derived = ("transfers", "status", "amount_received_base_units", "amount_confirmed_base_units")
    data = {k: v for k, v in previous.data.items() if k not in derived}
    return intent_event(sequence=sequence, transfers=transfers, **data)


_CHAIN_EVENTS = {
    "detected": TransferDetected,
    "confirmed": TransferConfirmed,
    "reverted": TransferReverted,
}


def chain_transfer_event(kind: str = "confirmed", *, sequence: int = 1, **overrides: Any) -> Event:
    values: dict[str, Any] = {
        "network": "ethereum",
        "chain_id": 31337,
        "token_contract": "0xdac17f958d2ee523a2206206994597c13d831ec7",
        "tx_hash": tx_hash(),
        "log_index": 0,
        "block_number": 100,
        "block_hash": tx_hash(),
        "block_timestamp": datetime.now(UTC),
        "from_address": evm_address(),
        "to_address": evm_address(),
        "amount_base_units": 10 * USDT,
        "confirmations": 3,
        "confirmations_required": 3,
    }
    values.update(overrides)
    payload = _CHAIN_EVENTS[kind](**values)
    subject = f"{values['network']}:{values['tx_hash']}:{values['log_index']}"
    return make_event(payload, producer="watcher-ethereum", subject=subject, sequence=sequence)


def head_event(network: str = "ethereum", *, head: int, sequence: int | None = None) -> Event:
    payload = ChainHead(
        network=network, head_block=head, scanned_block=head, head_timestamp=datetime.now(UTC)
    )
    return make_event(
        payload, producer=f"watcher-{network}", subject=network, sequence=sequence or head
    )


def outgoing_event(*, sequence: int, **overrides: Any) -> Event:
    """The gateway's `outgoing.transfer.updated` for one transfer at version `sequence`
    (a confirmed USDT sweep from a deposit address to the treasury unless overridden)."""
    values: dict[str, Any] = {
        "transfer_id": new_id("ot"),
        "batch_id": new_id("ob"),
        "purpose": "sweep",
        "state": "confirmed",
        "previous_state": "broadcast",
        "network": "ethereum",
        "source_address": evm_address(),
        "destination_address": evm_address(),
        "asset": "USDT",
        "token_contract": "0xdac17f958d2ee523a2206206994597c13d831ec7",
        "decimals": 6,
        "amount_base_units": 25 * USDT,
        "reference": None,
        "tx_hash": tx_hash(),
        "block_number": 120,
        "block_hash": tx_hash(),
        "receipt_status": "success",
        "gas_used": 40_000,
        "energy_used": None,
        "bandwidth_used": None,
        "fee_paid_base_units": 40_000 * 2_000_000_000,
        "failure_reason": None,
    }
    values.update(overrides)
    payload = OutgoingTransferUpdated(**values)
    return make_event(payload, producer="gateway", subject=values["transfer_id"], sequence=sequence)


def next_update(previous: Event, *, sequence: int, **changes: Any) -> Event:
    """The gateway's next update of the same outgoing transfer."""
    data = {**previous.data, "previous_state": previous.data["state"], **changes}
    return outgoing_event(sequence=sequence, **data)
