"""Ops users: creation with an argon2id password hash, password checks, and the login
sessions a cookie points at. Functions only flush; the caller owns the transaction.

Hashing and verifying take tens of milliseconds of CPU by design, so they run in a
thread and never stall the event loop that serves every other request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.errors import AuthenticationFailed, Conflict, InvalidRequest
from stablegate_common.core.ids import new_id
from stablegate_dashboard.users import repository
from stablegate_dashboard.users.models import ROLES, OpsSession, OpsUser

log = logging.getLogger(__name__)

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024  # argon2 takes any length; this bounds the work a login costs
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}$")
_HASHER = PasswordHasher()  # argon2id with argon2-cffi's defaults (RFC 9106 profile)


@dataclass(frozen=True)
class Principal:
    """The signed-in ops user, as the pages see them."""

    user_id: str
    email: str
    role: str
    session_id: str
    csrf_token: str

    @property
    def can_act(self) -> bool:
        return self.role == "admin"


def normalize_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not _EMAIL.match(cleaned):
        raise InvalidRequest("email must look like name@example.com", param="email")
    return cleaned


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidRequest(
            f"password must be at least {MIN_PASSWORD_CHARS} characters", param="password"
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidRequest(
            f"password must be at most {MAX_PASSWORD_CHARS} characters", param="password"
        )


async def create_user(session: AsyncSession, *, email: str, password: str, role: str) -> OpsUser:
    address = normalize_email(email)
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of: {', '.join(ROLES)}", param="role")
    check_password_rules(password)
    if await repository.by_email(session, address) is not None:
        raise Conflict(f"an ops user {address} exists already", param="email", code="email_taken")
    password_hash = await asyncio.to_thread(_HASHER.hash, password)
    user = OpsUser(id=new_id("usr"), email=address, password_hash=password_hash, role=role)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # created concurrently by another process
        raise Conflict(
            f"an ops user {address} exists already", param="email", code="email_taken"
        ) from exc
    return user


@cache
def _decoy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def _matches(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _wrong_credentials() -> AuthenticationFailed:
    return AuthenticationFailed("The email or password is wrong.", code="invalid_credentials")


async def authenticate(session: AsyncSession, *, email: str, password: str) -> OpsUser:
    """The enabled user with this email and password, or AuthenticationFailed. An unknown
    email costs as much time as a wrong password, so timing does not reveal accounts."""
    try:
        address = normalize_email(email)
    except InvalidRequest:
        address = ""
    user = await repository.by_email(session, address) if address else None
    candidate = user.password_hash if user is not None else _decoy_hash()
    ok = await asyncio.to_thread(_matches, candidate, password[:MAX_PASSWORD_CHARS])
    if user is None or not ok or user.disabled_at is not None:
        log.info("ops login refused", extra={"user": user.id if user else None})
        raise _wrong_credentials()
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(_HASHER.hash, password)
    user.last_login_at = datetime.now(UTC)
    await session.flush()
    log.info("ops login", extra={"user": user.id, "role": user.role})
    return user


async def open_session(session: AsyncSession, user: OpsUser, *, ttl_seconds: int) -> OpsSession:
    opened = OpsSession(
        id=secrets.token_urlsafe(24),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl_seconds),
    )
    session.add(opened)
    await session.flush()
    return opened


async def resume_session(session: AsyncSession, *, session_id: str, user_id: str) -> Principal:
    found = await repository.live_session(session, session_id, user_id, datetime.now(UTC))
    if found is None:
        raise AuthenticationFailed("the session has ended", code="session_ended")
    opened, user = found
    return Principal(user.id, user.email, user.role, opened.id, opened.csrf_token)


async def close_session(session: AsyncSession, session_id: str) -> None:
    await repository.revoke(session, session_id, datetime.now(UTC))
    await session.flush()
