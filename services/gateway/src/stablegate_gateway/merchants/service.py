"""Merchants and who is calling: creating a merchant with its first API key, checking a
presented API key or JWT, and exchanging a key for a short-lived JWT."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.auth import KeyMode, api_key_mode, generate_api_key, hash_api_key
from stablegate_common.core.errors import AuthenticationFailed, InvalidRequest
from stablegate_common.core.ids import new_id
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.merchants import repository
from stablegate_gateway.merchants.models import ApiKey, Merchant


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a merchant, through one of its keys."""

    merchant_id: str
    api_key_id: str
    mode: KeyMode
    via: Literal["api_key", "token"]


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


async def authenticate_api_key(
    session: AsyncSession, ctx: GatewayContext, secret: str
) -> Principal:
    mode = api_key_mode(secret)
    if mode is None:
        raise _invalid_key()
    key = await repository.active_key_by_hash(session, hash_api_key(secret, ctx.api_key_pepper))
    if key is None:
        raise _invalid_key()
    return Principal(key.merchant_id, key.id, mode, "api_key")


async def authenticate_token(session: AsyncSession, ctx: GatewayContext, token: str) -> Principal:
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
    # A revoked key takes its tokens with it, though they have not expired yet.
    if await repository.active_key(session, key_id, merchant_id) is None:
        raise AuthenticationFailed("The token's API key has been revoked.", code="invalid_token")
    return Principal(merchant_id, key_id, mode, "token")


async def authenticate(session: AsyncSession, ctx: GatewayContext, credential: str) -> Principal:
    """Check a bearer credential: a secret API key (`sk_…`) or a JWT from /v1/auth/token."""
    if credential.startswith("sk_"):
        return await authenticate_api_key(session, ctx, credential)
    return await authenticate_token(session, ctx, credential)


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
