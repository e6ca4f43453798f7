"""A refund or payout as the API, webhooks and `GET /v1/events` show it."""

from __future__ import annotations

from typing import Any

from stablegate_common.core.addresses import display_address
from stablegate_common.core.money import format_amount
from stablegate_gateway.api.serialization import iso_timestamp
from stablegate_gateway.disbursements.models import Disbursement
from stablegate_signer.units import NATIVE_DECIMALS, NATIVE_SYMBOL


def present_disbursement(d: Disbursement) -> dict[str, Any]:
    family = "tron" if d.network == "tron" else "evm"
    body: dict[str, Any] = {"id": d.id, "object": d.kind, "status": d.status}
    if d.kind == "refund":
        body["payment_intent"] = d.payment_intent_id
        body["reason"] = d.reason
    else:
        body["description"] = d.description
    body |= {
        "network": d.network,
        "asset": d.asset,
        "token_contract": display_address(family, d.token_contract),
        "decimals": d.decimals,
        "amount": format_amount(d.amount_base_units, d.decimals),
        "amount_base_units": str(d.amount_base_units),
        "destination_address": display_address(family, d.destination_address),
        "tx_hash": d.tx_hash,
        "network_fee": _network_fee(d),
        "failure_reason": d.failure_reason,
        "requires_approval": d.requires_approval,
        "approvals": len(d.approvals or []),
        "source": d.source,
        "created_at": iso_timestamp(d.created_at),
        "metadata": dict(d.metadata_ or {}),
    }
    return body


def _network_fee(d: Disbursement) -> dict[str, Any]:
    """What the network charged in its native coin (None until mined), and who pays it."""
    symbol, decimals = NATIVE_SYMBOL[d.network], NATIVE_DECIMALS[d.network]
    if d.network_fee_base_units is None:
        return {"amount": None, "amount_base_units": None, "asset": symbol, "paid_by": d.fee_payer}
    return {
        "amount": format_amount(d.network_fee_base_units, decimals),
        "amount_base_units": str(d.network_fee_base_units),
        "asset": symbol,
        "paid_by": d.fee_payer,
    }
