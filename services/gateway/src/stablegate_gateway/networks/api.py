"""`GET /v1/networks`: what can be paid where, and how current each watcher is."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from stablegate_common.core.addresses import display_address
from stablegate_common.core.assets import Network
from stablegate_gateway.api.dependencies import Context, CurrentMerchant
from stablegate_gateway.api.errors import ERROR_RESPONSES
from stablegate_gateway.api.pagination import list_object
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.networks import repository
from stablegate_gateway.networks.models import NetworkHead
from stablegate_gateway.networks.schemas import NetworkList

router = APIRouter(prefix="/v1/networks", tags=["Networks"])


@router.get(
    "",
    summary="List networks",
    description=(
        "Every network the gateway accepts payments on, with its chain id, confirmation "
        "depth, the token contracts that count (anything else sent to a deposit address is "
        "ignored) and the health of its chain watcher."
    ),
    responses={200: {"model": NetworkList}, **ERROR_RESPONSES},
)
async def list_networks(ctx: Context, _: CurrentMerchant) -> JSONResponse:
    async with ctx.db.sessions() as session:
        heads = await repository.heads(session)
    now = datetime.now(UTC)
    data = [present_network(ctx, n, heads.get(n.name), now) for n in _ordered(ctx)]
    return JSONResponse(list_object(data, has_more=False, url="/v1/networks"))


def _ordered(ctx: GatewayContext) -> list[Network]:
    return [ctx.registry.network(name) for name in ctx.registry.names()]


def present_network(
    ctx: GatewayContext, network: Network, head: NetworkHead | None, now: datetime
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": network.name,
        "object": "network",
        "name": network.display_name,
        "chain_id": network.chain_id,
        "confirmations_required": ctx.confirmations_for(network.name),
        "native_symbol": network.native_symbol,
        "assets": [
            {
                "symbol": asset.symbol,
                "token_contract": display_address(network.family, asset.contract),
                "decimals": asset.decimals,
            }
            for asset in network.assets
        ],
        "head_block": None,
        "scanned_block": None,
        "watcher_lag_seconds": None,
        "watcher_lag_blocks": None,
        "status": "unknown",
    }
    if head is None:
        return body
    lag_seconds = max(0.0, (now - head.observed_at).total_seconds())
    lag_blocks = max(0, head.head_block - head.scanned_block)
    config = ctx.settings.gateway
    lagging = (
        lag_seconds > config.network_lagging_seconds or lag_blocks > config.network_lagging_blocks
    )
    body.update(
        head_block=head.head_block,
        scanned_block=head.scanned_block,
        watcher_lag_seconds=round(lag_seconds, 3),
        watcher_lag_blocks=lag_blocks,
        status="lagging" if lagging else "ok",
    )
    return body
