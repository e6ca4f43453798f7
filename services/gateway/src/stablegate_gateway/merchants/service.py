"""Merchants and who is calling: creating a merchant with its first API key, checking a
presented API key or JWT, and exchanging a key for a short-lived JWT.

`authenticate` says who a credential is; whether its key is still active is asked on
every request by `admit` (with the rate-limit token in the same statement), so a revoked
key stops working at once on every replica although its identity is remembered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from stablegate_common.auth import KeyMode, api_key_mode, generate_api_key, hash_api_key
from stablegate_common.core.errors import AuthenticationFailed, InvalidRequest
from stablegate_common.core.ids import new_id
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.merchants import repository
from stablegate_gateway.merchants.identities import Principal
from stablegate_gateway.merchants.models import ApiKey, Merchant
from stablegate_gateway.ratelimit import service as ratelimit

__all__ = ["Principal", "admit", "authenticate", "create_merchant", "issue_token"]


@dataclass(frozen=True)
class NewMerchant:
    merchant: Merchant
    api_key: ApiKey
    secret: str  # shown once, never stored


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_at: datetime
    expires_in: int


async def create_merchant(
    session: AsyncSession, ctx: GatewayContext, *, name: str, mode: KeyMode = "test"
) -> NewMerchant:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidRequest("name must be 1 to 200 characters", param="name")
    issued = generate_api_key(mode, pepper=ctx.api_key_pepper)
    merchant = Merchant(id=new_id("mer"), name=name)
    key = ApiKey(
        id=new_id("key"),
        merchant_id=merchant.id,
        mode=issued.mode,
        prefix=issued.prefix,
        last4=issued.last4,
        key_hash=issued.hash,
    )
    await repository.add_merchant(session, merchant, key)
    return NewMerchant(merchant, key, issued.secret)


def _invalid_key() -> AuthenticationFailed:
    return AuthenticationFailed("Invalid API key provided.", code="invalid_api_key")


def _revoked_token() -> AuthenticationFailed:
    return AuthenticationFailed("The token's API key has been revoked.", code="invalid_token")


async def authenticate_api_key(
    conn: AsyncConnection, ctx: GatewayContext, secret: str
) -> Principal:
    mode = api_key_mode(secret)
    if mode is None:
        raise _invalid_key()
    key_hash = hash_api_key(secret, ctx.api_key_pepper)
    known = ctx.key_identities.get(key_hash)
    if known is not None:
        return known
    row = await repository.active_key_by_hash(conn, key_hash)
    if row is None:
        raise _invalid_key()
    principal = Principal(row.merchant_id, row.id, mode, "api_key")
    ctx.key_identities.put(key_hash, principal)
    return principal


def authenticate_token(ctx: GatewayContext, token: str) -> Principal:
    claims = ctx.jwt.verify(token)
    merchant_id, key_id, mode = claims.get("sub"), claims.get("key"), claims.get("mode")
    if (
        not isinstance(key_id, str)
        or mode not in ("test", "live")
        or not isinstance(merchant_id, str)
    ):
        raise AuthenticationFailed(
            "The token was not issued by this gateway.", code="invalid_token"
        )
    return Principal(merchant_id, key_id, mode, "token")


async def authenticate(conn: AsyncConnection, ctx: GatewayContext, credential: str) -> Principal:
    """Who a bearer credential is: a secret API key (`sk_…`) or a JWT from /v1/auth/token.
    Follow it with `admit`: a remembered or signed identity may belong to a revoked key."""
    if credential.startswith("sk_"):
        return await authenticate_api_key(conn, ctx, credential)
    return authenticate_token(ctx, credential)


async def admit(
    conn: AsyncConnection, ctx: GatewayContext, principal: Principal
) -> ratelimit.RateLimitDecision | None:
    """Check that the principal's key is still active and take its rate-limit token, in
    one statement on an autocommit connection; the decision (None with rate limits off).
    Raises AuthenticationFailed for a revoked key; a refused token is the caller's 429."""
    config = ctx.settings.gateway
    if config.rate_limit_enabled:
        rule = ratelimit.rule_for(config, principal.merchant_id, principal.api_key_id)
        decision = await ratelimit.take(conn, principal.api_key_id, principal.merchant_id, rule)
        active = decision is not None
    else:
        decision = None
        active = await repository.is_active(conn, principal.api_key_id, principal.merchant_id)
    if not active:
        raise _invalid_key() if principal.via == "api_key" else _revoked_token()
    return decision


def issue_token(ctx: GatewayContext, principal: Principal) -> AccessToken:
    if principal.via != "api_key":
        # Tokens minting tokens would let a leaked token live for ever.
        raise AuthenticationFailed(
            "Authenticate with a secret API key to obtain a token.", code="api_key_required"
        )
    token, expires_at = ctx.jwt.issue(
        principal.merchant_id, {"key": principal.api_key_id, "mode": principal.mode}
    )
    return AccessToken(token, expires_at, int(ctx.jwt.ttl.total_seconds()))
