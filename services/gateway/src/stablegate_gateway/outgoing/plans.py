"""What a planner hands the pipeline: transactions to sign, nothing stored yet.

A planner (sweeps now; refunds and payouts next) decides sources, destinations, amounts,
nonces and fee fields from the chain as it is at plan time; `repository.create_batch`
turns a list of these into one batch, its transfers (`planned`) and its signing request.
`key` names a transfer within the plan so that `depends_on` can point at another one
before either has an id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class PlannedTransfer:
    key: str  # unique within the plan, e.g. "topup:0x…" or "sweep:0x…"
    purpose: str  # sweep | fee_topup | refund | payout | stake | resource_(un)delegation
    network: str
    source_address: str
    source_path: str
    destination_address: str | None
    destination_path: str | None  # set when the destination is one of ours
    asset: str  # symbol: USDT, USDC, ETH, BNB, TRX
    token_contract: str | None  # None: the native coin
    decimals: int
    amount_base_units: int
    max_fee_base_units: int  # worst case, what the signer caps
    estimated_fee_base_units: int  # what the plan expects to pay
    depends_on: str | None = None  # the key of a transfer that must be mined first
    reference: str | None = None  # the intent / refund / payout it serves
    merchant_id: str | None = None  # refunds and payouts: whose balance pays
    replaces: str | None = None  # ot_… it redoes (EVM fee bump, Tron re-plan)
    # EVM
    chain_id: int | None = None
    nonce: int | None = None
    gas_limit: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    gas_price: int | None = None
    # Tron
    tron_contract_type: str | None = None
    ref_block_bytes: str | None = None
    ref_block_hash: str | None = None
    expiration_ms: int | None = None
    timestamp_ms: int | None = None
    fee_limit: int | None = None
    resource: str | None = None
    lock: bool | None = None
    lock_period: int | None = None
    estimated_energy: int | None = None
    estimated_bandwidth: int | None = None


@dataclass(frozen=True)
class PlanSummary:
    """What a person reads before approving a plan (stored with the batch as JSON)."""

    network: str
    kind: str  # sweep | refund | payout | replacement
    addresses: int  # sources with funds moved
    totals: dict[str, int]  # asset symbol -> base units moved to the destination(s)
    network_cost_base_units: int  # estimated, in the native coin
    network_cost_max_base_units: int  # worst case, in the native coin
    native_symbol: str
    native_price_usd: Decimal | None  # the price used, None when unknown
    network_cost_usd: Decimal | None
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> addresses left out
    notes: list[str] = field(default_factory=list)
    network_cost_max_usd: Decimal | None = None  # the worst case at the same price
