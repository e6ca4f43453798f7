"""FastAPI dependencies every resource uses: the gateway context and the authenticated
merchant (`Authorization: Bearer <sk_… key or JWT>`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from stablegate_common.core.errors import AuthenticationFailed
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.merchants.service import Principal, authenticate

# Declared for the OpenAPI security scheme; the header itself is read below so that a
# missing key and a malformed one get different codes.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A secret API key (`sk_test_…`, `sk_live_…`) or a JWT from `POST /v1/auth/token`.",
)


def get_context(request: Request) -> GatewayContext:
    ctx: GatewayContext = request.app.state.ctx
    return ctx


Context = Annotated[GatewayContext, Depends(get_context)]


async def get_principal(
    request: Request,
    ctx: Context,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    header = request.headers.get("authorization", "").strip()
    if not header:
        raise AuthenticationFailed(
            "No API key provided. Send `Authorization: Bearer <secret key>`.",
            code="missing_api_key",
        )
    scheme, _sep, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise AuthenticationFailed(
            "Malformed Authorization header. Send `Authorization: Bearer <secret key>`.",
            code="invalid_api_key",
        )
    # A short read-only session of its own: authentication commits nothing.
    async with ctx.db.sessions() as session:
        return await authenticate(session, ctx, credential)


CurrentMerchant = Annotated[Principal, Depends(get_principal)]
