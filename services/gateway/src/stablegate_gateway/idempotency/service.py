"""What an `Idempotency-Key` means (Stripe's semantics, research/payments-api.md §5.2).

The first request with a key claims it in a short transaction of its own (`INSERT … ON
CONFLICT DO NOTHING` on (merchant, key)), so a concurrent duplicate sees the claim at
once and gets 409 `idempotency_key_in_use` instead of running a second time. The
response is then stored in the transaction that holds the request's own writes (see
`idempotency.request`), so a stored response always describes writes that committed,
and writes never commit without their response. A claim whose holder died keeps its
lease (`locked_until`) and is retaken by the next retry once that runs out.

A retry with the same key and the same fingerprint (method, path, canonical body) gets
the stored status and body back; the same key with another body is 409
`idempotency_key_reused`. Keys are purged after `GATEWAY_IDEMPOTENCY_RETENTION_SECONDS`
(24 h) by `purge_expired`.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.errors import Conflict, InvalidRequest
from stablegate_common.db import Database
from stablegate_gateway.idempotency import repository
from stablegate_gateway.idempotency.models import COMPLETED

MAX_KEY_LENGTH = 255
HEADER = "Idempotency-Key"
# Printable ASCII without spaces at the ends: what survives every HTTP stack unchanged.
_KEY = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$")


class IdempotencyError(Conflict):
    """The key cannot be used for this request (409, type `idempotency_error`)."""


class KeyReused(IdempotencyError):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was already used with a different request (method, path "
            "or body). Use a new key for a new request.",
            param=HEADER,
        )


class KeyInUse(IdempotencyError):
    code = "idempotency_key_in_use"

    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still being processed. Retry shortly "
            "with the same key to get its result.",
            param=HEADER,
        )


class InvalidKey(InvalidRequest):
    code = "idempotency_key_invalid"

    def __init__(self) -> None:
        super().__init__(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters "
            "(a V4 UUID is a good choice).",
            param=HEADER,
        )


@dataclass(frozen=True)
class StoredResponse:
    status: int
    content_type: str | None
    body: bytes


class Replay(Exception):
    """Raised where the handler would begin: the key already holds this response."""

    def __init__(self, response: StoredResponse) -> None:
        super().__init__(f"replay of a stored {response.status} response")
        self.response = response


def check_key(key: str) -> str:
    if len(key) > MAX_KEY_LENGTH or not _KEY.match(key):
        raise InvalidKey()
    return key


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """SHA-256 of the method, the path with its query and the canonical body: the same
    JSON written with other spacing or key order is the same request."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query.encode(), canonical_body(body)):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no ambiguous joins
        digest.update(part)
    return digest.hexdigest()


def canonical_body(body: bytes) -> bytes:
    if not body.strip():
        return b"{}"  # an empty body means no parameters, as `api.body` reads it
    try:
        data = json.loads(body, parse_float=Decimal, parse_constant=_keep_constant)
    except (ValueError, UnicodeDecodeError):
        return body  # not JSON: the handler refuses it; compare the bytes
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def _keep_constant(name: str) -> Any:
    return name  # NaN/Infinity: refused later by the handler; only the bytes matter here


async def acquire(
    db: Database, merchant_id: str, key: str, request_fingerprint: str, lease: timedelta
) -> str:
    """Claim the key for this request and return the claim's lock token.

    Raises Replay when the key holds a completed response for the same request, KeyReused
    for a different request, KeyInUse while another request holds a live claim.
    """
    token = secrets.token_hex(16)
    # Each statement is atomic alone (autocommit, no transaction): the claim is visible to
    # a concurrent duplicate the moment it is made, and costs one round trip.
    async with db.autocommit() as conn:
        for _ in range(3):  # a key released or purged between our statements: try again
            if await repository.claim(conn, merchant_id, key, request_fingerprint, token, lease):
                return token
            row = await repository.get(conn, merchant_id, key)
            if row is None:
                continue
            if row.fingerprint != request_fingerprint:
                raise KeyReused()
            if row.status == COMPLETED:
                raise Replay(
                    StoredResponse(
                        status=row.response_status or 200,
                        content_type=row.response_content_type,
                        body=row.response_body or b"",
                    )
                )
            if await repository.take_over(
                conn, merchant_id, key, request_fingerprint, token, lease
            ):
                return token
            raise KeyInUse()
    raise KeyInUse()


async def purge_expired(session: AsyncSession, older_than: datetime) -> int:
    """Delete idempotency keys created before `older_than` (the job passes now - 24 h);
    return how many. Runs in the caller's transaction (flush-free: one DELETE)."""
    return await repository.purge_expired(session, older_than)
