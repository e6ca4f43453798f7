"""FastAPI dependencies every resource uses: the gateway context and the authenticated,
rate-limited merchant (`Authorization: Bearer <sk_… key or JWT>`).

During a POST with an `Idempotency-Key` the context's `db` joins the handler's writes to
the request's idempotency record (`idempotency.request`); the principal tells that record
whose key it is.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from stablegate_common.core.errors import AuthenticationFailed
from stablegate_gateway.api.middleware import add_response_headers
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.idempotency.request import IdempotentDatabase, current_request
from stablegate_gateway.merchants.service import Principal, admit, authenticate
from stablegate_gateway.ratelimit import service as ratelimit

# Declared for the OpenAPI security scheme; the header itself is read below so that a
# missing key and a malformed one get different codes.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A secret API key (`sk_test_…`, `sk_live_…`) or a JWT from `POST /v1/auth/token`.",
)


def get_context(request: Request) -> GatewayContext:
    ctx: GatewayContext = request.app.state.ctx
    idempotent = current_request.get()
    if idempotent is None:
        return ctx
    return ctx.using(IdempotentDatabase(ctx.db, idempotent))


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
    # One autocommit connection, no transaction: the key's identity (remembered after its
    # first use), then one statement that checks revocation and takes a rate-limit token.
    async with ctx.db.autocommit() as conn:
        principal = await authenticate(conn, ctx, credential)
        decision = await admit(conn, ctx, principal)
    if decision is not None:
        add_response_headers(decision.headers())
        if not decision.allowed:
            ratelimit.REFUSED.inc()
            raise ratelimit.RateLimited(decision)
    idempotent = current_request.get()
    if idempotent is not None:
        idempotent.merchant_id = principal.merchant_id
    return principal


CurrentMerchant = Annotated[Principal, Depends(get_principal)]
