"""Payloads of every event on the bus, version 1.

Families: `address.*` (deposit addresses provisioned by the gateway, so watchers know
them before any is handed out), `intent.*` (the gateway's decisions, event-carried
state), `transfer.*` and `chain.*` (chain facts from watchers, no interpretation),
`balance.*` and `reconciliation.*` (the reconciler's books), `outgoing.*` (the
gateway's outgoing transfers: sweeps, refunds, payouts) and `chain.tx.*` (what watchers
see of those transactions, tracked by hash).
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
    # Owed to the merchant but held for refunds and payouts signed and not yet settled
    # (not in `available`); 0 from a reconciler that predates refunds.
    reserved_base_units: BaseUnitsField = 0


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


# --- funds out (DESIGN.md §8) -------------------------------------------------------------

OutgoingState = Literal[
    "planned",
    "awaiting_signature",
    "signed",
    "broadcast",
    "confirmed",
    "failed",
    "canceled",
    "replaced",
    # Canceled after its request was issued: never broadcast by the gateway, still watched
    # (signed bytes may exist) until it cannot be mined; then `canceled`, or booked.
    "canceling",
]


@register
class OutgoingTransferUpdated(EventPayload):
    """Any change of an outgoing transfer (event-carried state, one per state change).

    Watchers track `tx_hash` from the first `broadcast` on; the reconciler books the
    movement and its network fee when `state` becomes `confirmed` (or `failed` with a
    `fee_paid_base_units`: a revert still burns gas) and reverses them when it leaves.
    """

    event_type = "outgoing.transfer.updated"

    transfer_id: str  # ot_…
    batch_id: str  # ob_…
    purpose: str  # sweep | fee_topup | refund | payout | stake | resource_(un)delegation
    state: OutgoingState
    previous_state: OutgoingState | None
    network: str
    source_address: str
    destination_address: str | None
    asset: str
    token_contract: str | None  # None: the native coin
    decimals: int
    amount_base_units: BaseUnitsField
    reference: str | None  # the intent / refund / payout it serves
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None
    receipt_status: Literal["success", "reverted"] | None
    gas_used: int | None
    energy_used: int | None
    bandwidth_used: int | None
    fee_paid_base_units: BaseUnitsField | None  # native coin the network charged
    failure_reason: str | None
    # Expiry of a Tron transaction (ms since the epoch): after it, an unmined one is dead.
    expiration_ms: int | None = None
    # Refunds and payouts: the merchant whose balance pays (reserved once signed, settled
    # once confirmed, released if it fails). None for the business's own transfers.
    merchant_id: str | None = None


class ChainTxFields(EventPayload):
    """What a watcher saw of one tracked transaction (ours, by hash)."""

    network: str
    tx_hash: str
    block_number: int = Field(ge=0)
    block_hash: str
    block_timestamp: datetime
    success: bool  # EVM receipt status 1 / Tron contractRet SUCCESS
    gas_used: int | None  # EVM
    effective_gas_price: BaseUnitsField | None  # EVM, wei
    energy_used: int | None  # Tron: energy_usage_total
    bandwidth_used: int | None  # Tron: net_usage (bandwidth from stake or free)
    fee_paid_base_units: BaseUnitsField  # native coin charged: wei, or sun burned (fee)
    confirmations: int = Field(ge=0)
    confirmations_required: int = Field(ge=1)


@register
class ChainTxMined(ChainTxFields):
    """A tracked transaction is in a canonical block, not final yet."""

    event_type = "chain.tx.mined"


@register
class ChainTxConfirmed(ChainTxFields):
    """A tracked transaction reached the network's confirmation depth."""

    event_type = "chain.tx.confirmed"


@register
class ChainTxReorged(ChainTxFields):
    """The block that held a tracked transaction left the canonical chain (the fields are
    those of the block it was in)."""

    event_type = "chain.tx.reorged"


@register
class ChainTxNotFound(EventPayload):
    """A tracked transaction is in no block and the node does not know it (dropped from
    the mempool, or a Tron transaction past its expiration): the gateway decides. On Tron
    the solidified chain lacks it too, and `head_*` is the solidified head."""

    event_type = "chain.tx.not_found"

    network: str
    tx_hash: str
    checked_at: datetime
    head_block: int = Field(ge=0)
    head_timestamp: datetime
