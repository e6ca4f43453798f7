"""Payloads of every event on the bus, version 1.

Families: `address.*` (deposit addresses provisioned by the gateway, so watchers know
them before any is handed out), `intent.*` (the gateway's decisions, event-carried
state), `transfer.*` and `chain.*` (chain facts from watchers, no interpretation),
`balance.*` and `reconciliation.*` (the reconciler's books).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from stablegate_common.events.envelope import BaseUnitsField, EventPayload, register

TransferStatus = Literal["pending", "confirmed", "reverted"]
IntentStatus = Literal[
    "awaiting_payment",
    "confirming",
    "partially_paid",
    "paid",
    "requires_action",
    "expired",
    "canceled",
]


@register
class AddressesProvisioned(EventPayload):
    """Deposit addresses derived ahead of need; watchers add them to their watch set."""

    event_type = "address.provisioned"

    family: Literal["evm", "tron"]  # EVM addresses serve both Ethereum and BSC
    addresses: list[str] = Field(min_length=1)
    first_index: int = Field(ge=0)


class ChainTransferFields(EventPayload):
    network: str
    chain_id: int | None
    token_contract: str
    tx_hash: str
    log_index: int = Field(ge=0)
    block_number: int = Field(ge=0)
    block_hash: str
    block_timestamp: datetime
    from_address: str
    to_address: str
    amount_base_units: BaseUnitsField
    confirmations: int = Field(ge=0)
    confirmations_required: int = Field(ge=1)


@register
class TransferDetected(ChainTransferFields):
    """A Transfer log of a registered token to a watched address, not final yet."""

    event_type = "transfer.detected"


@register
class TransferConfirmed(ChainTransferFields):
    """The transfer reached the network's confirmation depth."""

    event_type = "transfer.confirmed"


@register
class TransferReverted(ChainTransferFields):
    """A reorg removed the block that held the transfer."""

    event_type = "transfer.reverted"


@register
class ChainHead(EventPayload):
    """The watcher's view of the chain after a scan tick."""

    event_type = "chain.head"

    network: str
    head_block: int = Field(ge=0)
    scanned_block: int = Field(ge=0)
    head_timestamp: datetime


class IntentTransfer(EventPayload):
    transfer_id: str
    tx_hash: str
    log_index: int
    block_number: int
    from_address: str
    amount_base_units: BaseUnitsField
    status: TransferStatus


class IntentSnapshot(EventPayload):
    intent_id: str
    merchant_id: str
    status: IntentStatus
    previous_status: IntentStatus | None
    exception: str | None
    network: str
    asset: str
    token_contract: str
    decimals: int
    deposit_address: str
    amount_base_units: BaseUnitsField
    amount_received_base_units: BaseUnitsField
    amount_confirmed_base_units: BaseUnitsField
    reference: str | None
    created_at: datetime
    expires_at: datetime
    transfers: list[IntentTransfer]
    # Optional so that snapshots published before these fields existed still parse.
    description: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


@register
class IntentCreated(IntentSnapshot):
    event_type = "intent.created"


@register
class IntentUpdated(IntentSnapshot):
    """Any change the gateway made to an intent (status, amounts, transfers)."""

    event_type = "intent.updated"


@register
class BalanceUpdated(EventPayload):
    event_type = "balance.updated"

    merchant_id: str
    network: str
    asset: str
    decimals: int
    available_base_units: BaseUnitsField


@register
class DiscrepancyFound(EventPayload):
    event_type = "reconciliation.discrepancy"

    network: str
    asset: str
    address: str
    ledger_base_units: BaseUnitsField
    chain_base_units: BaseUnitsField


@register
class DiscrepancyResolved(EventPayload):
    """A run found the ledger and the chain equal again at an address (subject = the
    discrepancy id that `reconciliation.discrepancy` announced)."""

    event_type = "reconciliation.discrepancy_resolved"

    network: str
    asset: str
    address: str
    resolved_run_id: str


@register
class ReconciliationRunCompleted(EventPayload):
    """A reconciliation run ended (`completed`, `partial` or `failed`): subject = run id."""

    event_type = "reconciliation.run_completed"

    run_id: str
    status: Literal["completed", "partial", "failed"]
    started_at: datetime
    finished_at: datetime
    addresses_checked: int = Field(ge=0)
    discrepancies: int = Field(ge=0)
    discrepancies_opened: int = Field(ge=0)
    discrepancies_resolved: int = Field(ge=0)
    # Per network: {"block": n, "addresses": n} or {"error": "why it was not checked"}.
    networks: dict[str, dict[str, int | str]]
