"""FastAPI dependencies every resource uses: the gateway context and the authenticated,
rate-limited merchant (`Authorization: Bearer <sk_… key or JWT>`).

During a POST with an `Idempotency-Key` the context's `db` joins the handler's writes to
the request's idempotency record (`idempotency.request`); the principal tells that record
whose key it is.
"""

from __future__ import annotations

import copy
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.errors import AuthenticationFailed
from stablegate_gateway.api.middleware import add_response_headers
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.idempotency.request import IdempotentDatabase, current_request
from stablegate_gateway.merchants.service import Principal, authenticate
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
    # A shallow copy shares the derivers and the JWT signer; only `db` differs.
    scoped = copy.copy(ctx)
    scoped.db = IdempotentDatabase(ctx.db, idempotent)
    return scoped


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
    # A short session of its own: the key lookup and the rate-limit bucket, nothing else.
    async with ctx.db.sessions() as session:
        principal = await authenticate(session, ctx, credential)
        await _rate_limit(session, ctx, principal)
        await session.commit()
    idempotent = current_request.get()
    if idempotent is not None:
        idempotent.merchant_id = principal.merchant_id
    return principal


async def _rate_limit(session: AsyncSession, ctx: GatewayContext, principal: Principal) -> None:
    config = ctx.settings.gateway
    if not config.rate_limit_enabled:
        return
    rule = ratelimit.rule_for(config, principal.merchant_id, principal.api_key_id)
    decision = await ratelimit.take(session, principal.api_key_id, rule)
    add_response_headers(decision.headers())
    if not decision.allowed:
        await session.commit()  # the bucket's new level counts even though we refuse
        ratelimit.REFUSED.inc()
        raise ratelimit.RateLimited(decision)


CurrentMerchant = Annotated[Principal, Depends(get_principal)]
