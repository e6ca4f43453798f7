"""The JSON shape of an intent in the dashboard's read-only API.

Amounts appear twice, as the gateway's API shows them: a decimal string (`amount`) and
the exact base units as a string (`amount_base_units`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from stablegate_common.core.money import format_amount
from stablegate_dashboard.intents.models import IntentView


class IntentOut(BaseModel):
    id: str
    object: Literal["payment_intent"] = "payment_intent"
    merchant_id: str
    status: str
    exception: str | None
    network: str
    asset: str
    token_contract: str
    decimals: int
    amount: str
    amount_base_units: str
    amount_received: str
    amount_received_base_units: str
    amount_confirmed: str
    amount_confirmed_base_units: str
    deposit_address: str
    reference: str | None
    description: str | None
    metadata: dict[str, Any]
    transfers: list[dict[str, Any]]
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None
    updated_at: datetime
    sequence: int

    @classmethod
    def of(cls, row: IntentView) -> IntentOut:
        def both(base_units: int) -> tuple[str, str]:
            return format_amount(base_units, row.decimals), str(base_units)

        amount, amount_bu = both(row.amount_base_units)
        received, received_bu = both(row.amount_received_base_units)
        confirmed, confirmed_bu = both(row.amount_confirmed_base_units)
        return cls(
            id=row.id,
            merchant_id=row.merchant_id,
            status=row.status,
            exception=row.exception,
            network=row.network,
            asset=row.asset,
            token_contract=row.token_contract,
            decimals=row.decimals,
            amount=amount,
            amount_base_units=amount_bu,
            amount_received=received,
            amount_received_base_units=received_bu,
            amount_confirmed=confirmed,
            amount_confirmed_base_units=confirmed_bu,
            deposit_address=row.deposit_address,
            reference=row.reference,
            description=row.description,
            metadata=row.metadata_,
            transfers=row.transfers,
            created_at=row.created_at,
            expires_at=row.expires_at,
            paid_at=row.paid_at,
            updated_at=row.updated_at,
            sequence=row.sequence,
        )


class IntentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[IntentOut]
    has_more: bool
