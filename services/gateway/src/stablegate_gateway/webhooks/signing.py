"""Webhook signatures: `Stablegate-Signature: t=<unix>,v1=<hex HMAC-SHA256>`.

The signed message is `f"{t}.{raw_body}"` over the exact bytes sent, never a re-serialised
JSON (the canonicalisation bugs of gateways that sign parsed JSON are the reason). The
timestamp in the signed message is what stops a captured delivery being replayed later:
`verify_signature` refuses one older than its tolerance. Several `v1=` entries may appear
(one per valid secret while a secret is being rolled); any one matching is enough.

`verify_signature` is what the merchant guide shows; it needs only the standard library.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence

SIGNATURE_HEADER = "Stablegate-Signature"
SCHEME = "v1"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(ValueError):
    """The header is missing or malformed, no signature matches, or it is too old."""


def new_secret() -> str:
    """A fresh endpoint secret, `whsec_` + 32 random bytes in hex."""
    return SECRET_PREFIX + secrets.token_hex(32)


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(
    secret: str | Sequence[str], body: bytes, *, timestamp: int | None = None
) -> str:
    """The header value for `body` signed now (or at `timestamp`), one `v1=` per secret:
    while a rolled secret overlaps its successor, both sign (the current one first)."""
    t = int(time.time()) if timestamp is None else timestamp
    keys = [secret] if isinstance(secret, str) else list(secret)
    return ",".join([f"t={t}", *(f"{SCHEME}={compute_signature(k, t, body)}" for k in keys)])


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: int | None = None,
) -> None:
    """Check a received webhook; raise InvalidSignature unless it is authentic and fresh.

    `body` must be the raw request body as received, before any JSON parsing.
    """
    timestamp, signatures = _parse_header(header)
    expected = compute_signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise InvalidSignature("no signature matches the body")
    current = int(time.time()) if now is None else now
    if tolerance > 0 and abs(current - timestamp) > tolerance:
        raise InvalidSignature(f"timestamp is more than {tolerance}s away from now")


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise InvalidSignature("the header has no timestamp (t=)")
    if not signatures:
        raise InvalidSignature(f"the header has no {SCHEME} signature")
    return timestamp, signatures
