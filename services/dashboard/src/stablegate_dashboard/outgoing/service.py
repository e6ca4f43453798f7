"""What the Outgoing pages show, made from the gateway's ops API answers.

The gateway's JSON carries base units as strings and prices as decimal strings; here
they become text for people with the asset's decimals (never through a float). A value
the gateway sent malformed shows as "—" rather than as a made-up number, and a missing
field the same, so a page never fails on one odd batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from stablegate_common.core.assets import AssetRegistry
from stablegate_common.core.errors import UnknownAsset, UnknownNetwork
from stablegate_common.core.ids import has_prefix
from stablegate_dashboard.web.templating import amount, group_thousands

# The native coins' decimals (the registry lists tokens, not the coin that pays gas).
NATIVE_DECIMALS = {"ETH": 18, "BNB": 18, "TRX": 6}
CANCELABLE = frozenset({"planned", "awaiting_signature", "signed"})
ISSUABLE = frozenset({"planned", "awaiting_signature"})
SIGNABLE = frozenset({"planned", "awaiting_signature"})
_CENT = Decimal("0.01")


def is_batch_id(value: str) -> bool:
    return has_prefix(value, "ob") and value[3:].isalnum()


def base_units(value: object) -> int | None:
    """An amount in base units as the gateway sends it (a digit string, or an int)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def decimal_of(value: object) -> Decimal | None:
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    try:
        found = Decimal(str(value))
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


def usd(value: Decimal | None) -> str | None:
    if value is None:
        return None
    return "$" + group_thousands(format(value.quantize(_CENT, rounding=ROUND_HALF_UP), "f"))


def stamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Quantity:
    """An amount for people: the number as text and its unit."""

    text: str
    unit: str


def quantity(raw: object, decimals: int | None, unit: str) -> Quantity:
    units = base_units(raw)
    if units is None:
        return Quantity("—", unit)
    if decimals is None:  # an asset this dashboard's registry does not know
        return Quantity(group_thousands(str(units)), f"base units of {unit}")
    return Quantity(amount(units, decimals), unit)


@dataclass(frozen=True)
class PlanCost:
    estimated: Quantity
    worst_case: Quantity
    usd: str | None  # None: the gateway had no price for the native coin
    price_usd: str | None


@dataclass(frozen=True)
class TransferRow:
    id: str
    seq: int | None
    purpose: str
    state: str
    source_address: str | None
    destination_address: str | None
    amount: Quantity
    tx_hash: str | None
    fee_paid: Quantity | None
    failure_reason: str | None
    depends_on: str | None
    reference: str | None
    block_number: int | None


@dataclass(frozen=True)
class BatchView:
    id: str
    network: str
    kind: str
    status: str
    created_at: datetime | None
    created_by: str | None
    issued_at: datetime | None
    signed_at: datetime | None
    canceled_at: datetime | None
    canceled_by: str | None
    request_digest: str | None
    addresses: int | None
    totals: list[Quantity]
    cost: PlanCost
    transfer_count: int | None
    state_counts: dict[str, int]
    skipped: dict[str, int]
    notes: list[str]
    transfers: list[TransferRow] = field(default_factory=list)

    @property
    def can_issue(self) -> bool:
        return self.status in ISSUABLE

    @property
    def can_sign(self) -> bool:
        return self.status in SIGNABLE

    @property
    def can_cancel(self) -> bool:
        return self.status in CANCELABLE


class Units:
    """Decimals by asset symbol for one network, from the registry and the batch itself."""

    def __init__(self, registry: AssetRegistry, network: str, native_symbol: str) -> None:
        self.registry = registry
        self.network = network
        self.native_symbol = native_symbol
        self.seen: dict[str, int] = {}

    def decimals(self, symbol: str) -> int | None:
        if symbol in self.seen:
            return self.seen[symbol]
        if symbol in NATIVE_DECIMALS:
            return NATIVE_DECIMALS[symbol]
        try:
            return self.registry.asset(self.network, symbol).decimals
        except (UnknownNetwork, UnknownAsset):
            return None


def native_symbol_of(registry: AssetRegistry, network: str, summary: dict[str, Any]) -> str:
    stated = summary.get("native_symbol")
    if isinstance(stated, str) and stated:
        return stated
    try:
        return registry.network(network).native_symbol
    except UnknownNetwork:
        return "native coin"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    return base_units(value)


def _counts(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): n for k, v in value.items() if (n := _int(v)) is not None}


def transfer_row(raw: dict[str, Any], units: Units) -> TransferRow:
    asset = str(raw.get("asset") or "?")
    decimals = _int(raw.get("decimals"))
    fee_paid = raw.get("fee_paid_base_units")
    return TransferRow(
        id=str(raw.get("id") or "—"),
        seq=_int(raw.get("seq")),
        purpose=str(raw.get("purpose") or "—"),
        state=str(raw.get("state") or "—"),
        source_address=_text(raw.get("source_address")),
        destination_address=_text(raw.get("destination_address")),
        amount=quantity(
            raw.get("amount_base_units"),
            decimals if decimals is not None else units.decimals(asset),
            asset,
        ),
        tx_hash=_text(raw.get("tx_hash")),
        fee_paid=None
        if fee_paid is None
        else quantity(fee_paid, units.decimals(units.native_symbol), units.native_symbol),
        failure_reason=_text(raw.get("failure_reason")),
        depends_on=_text(raw.get("depends_on")),
        reference=_text(raw.get("reference")),
        block_number=_int(raw.get("block_number")),
    )


def batch_view(raw: dict[str, Any], registry: AssetRegistry) -> BatchView:
    network = str(raw.get("network") or "—")
    found = raw.get("plan_summary")
    summary: dict[str, Any] = found if isinstance(found, dict) else {}
    native = native_symbol_of(registry, network, summary)
    units = Units(registry, network, native)
    listed = raw.get("transfers")
    transfers_raw = [t for t in listed if isinstance(t, dict)] if isinstance(listed, list) else []
    for t in transfers_raw:  # the batch's own transfers know their decimals best
        decimals = _int(t.get("decimals"))
        if isinstance(t.get("asset"), str) and decimals is not None:
            units.seen.setdefault(t["asset"], decimals)
    transfers = [transfer_row(t, units) for t in transfers_raw]
    totals_raw = summary.get("totals")
    totals = (
        [quantity(v, units.decimals(str(k)), str(k)) for k, v in sorted(totals_raw.items())]
        if isinstance(totals_raw, dict)
        else []
    )
    native_decimals = units.decimals(native)
    state_counts = _counts(raw.get("state_counts"))
    if not state_counts and transfers:
        for row in transfers:
            state_counts[row.state] = state_counts.get(row.state, 0) + 1
    count = _int(raw.get("transfer_count"))
    notes = summary.get("notes")
    price = decimal_of(summary.get("native_price_usd"))
    return BatchView(
        id=str(raw.get("id") or "—"),
        network=network,
        kind=str(raw.get("kind") or "—"),
        status=str(raw.get("status") or "—"),
        created_at=stamp(raw.get("created_at")),
        created_by=_text(raw.get("created_by")),
        issued_at=stamp(raw.get("issued_at")),
        signed_at=stamp(raw.get("signed_at")),
        canceled_at=stamp(raw.get("canceled_at")),
        canceled_by=_text(raw.get("canceled_by")),
        request_digest=_text(raw.get("request_digest")),
        addresses=_int(summary.get("addresses")),
        totals=totals,
        cost=PlanCost(
            estimated=quantity(summary.get("network_cost_base_units"), native_decimals, native),
            worst_case=quantity(
                summary.get("network_cost_max_base_units"), native_decimals, native
            ),
            usd=usd(decimal_of(summary.get("network_cost_usd"))),
            price_usd=None if price is None else "$" + group_thousands(format(price, "f")),
        ),
        transfer_count=count if count is not None else (len(transfers) or None),
        state_counts=state_counts,
        skipped=_counts(summary.get("skipped")),
        notes=[str(n) for n in notes] if isinstance(notes, list) else [],
        transfers=transfers,
    )
