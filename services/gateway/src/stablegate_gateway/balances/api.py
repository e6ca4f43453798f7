"""`GET /v1/balances`: the merchant's confirmed funds per network and asset, as booked by
the reconciler's ledger."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from stablegate_common.core.money import format_amount
from stablegate_gateway.api.dependencies import Context, CurrentMerchant
from stablegate_gateway.api.errors import ERROR_RESPONSES
from stablegate_gateway.api.pagination import list_object
from stablegate_gateway.balances import repository
from stablegate_gateway.balances.models import Balance
from stablegate_gateway.balances.schemas import BalanceList

router = APIRouter(prefix="/v1/balances", tags=["Balances"])


@router.get(
    "",
    summary="List balances",
    description=(
        "Confirmed balances per network and asset, from the reconciler's double-entry "
        "ledger: `available` (what payouts may use; also `amount`) and `reserved` (held for "
        "refunds and payouts signed and not yet confirmed). A network or asset the merchant "
        "was never paid in is not listed."
    ),
    responses={200: {"model": BalanceList}, **ERROR_RESPONSES},
)
async def list_balances(ctx: Context, principal: CurrentMerchant) -> JSONResponse:
    async with ctx.db.sessions() as session:
        balances = await repository.for_merchant(session, principal.merchant_id)
    data = [present_balance(b) for b in balances]
    return JSONResponse(list_object(data, has_more=False, url="/v1/balances"))


def present_balance(balance: Balance) -> dict[str, Any]:
    return {
        "object": "balance",
        "network": balance.network,
        "asset": balance.asset,
        "decimals": balance.decimals,
        "amount": format_amount(balance.available_base_units, balance.decimals),
        "amount_base_units": str(balance.available_base_units),
        "available": format_amount(balance.available_base_units, balance.decimals),
        "available_base_units": str(balance.available_base_units),
        "reserved": format_amount(balance.reserved_base_units or 0, balance.decimals),
        "reserved_base_units": str(balance.reserved_base_units or 0),
    }
