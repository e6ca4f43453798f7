"""`POST /v1/auth/token`: exchange a secret API key for a short-lived JWT."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from stablegate_gateway.api.dependencies import Context, CurrentMerchant
from stablegate_gateway.api.errors import ERROR_RESPONSES
from stablegate_gateway.api.serialization import iso_timestamp
from stablegate_gateway.merchants.schemas import TokenOut
from stablegate_gateway.merchants.service import issue_token

router = APIRouter(prefix="/v1/auth", tags=["Authentication"])


@router.post(
    "/token",
    summary="Exchange an API key for a token",
    description=(
        "Authenticate with a secret API key and receive a short-lived JWT that works in its "
        "place (`Authorization: Bearer <access_token>`) until `expires_at`. No body. A token "
        "cannot be used to obtain another token, and revoking the key invalidates its tokens."
    ),
    responses={200: {"model": TokenOut}, **ERROR_RESPONSES},
)
async def create_token(ctx: Context, principal: CurrentMerchant) -> JSONResponse:
    token = issue_token(ctx, principal)
    body: dict[str, Any] = {
        "object": "token",
        "access_token": token.token,
        "token_type": "Bearer",
        "expires_in": token.expires_in,
        "expires_at": iso_timestamp(token.expires_at),
    }
    return JSONResponse(body)
