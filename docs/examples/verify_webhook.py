"""Verify a Stablegate webhook: copy this function into your receiver (standard library only).

Call it with the raw request body exactly as received (bytes, before any JSON parsing),
the `Stablegate-Signature` header and your endpoint's `whsec_…` secret. It returns the
event as a dict, or raises ValueError when the request is not authentic or too old.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any


def verify_webhook(
    raw_body: bytes,
    signature_header: str,
    secret: str,
    tolerance_seconds: int = 300,
    now: int | None = None,
) -> dict[str, Any]:
    timestamp = None
    signatures = []
    for part in signature_header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)  # two of them while a secret is being rolled
    if timestamp is None or not signatures:
        raise ValueError("malformed Stablegate-Signature header")
    signed = str(timestamp).encode() + b"." + raw_body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise ValueError("signature does not match: wrong secret, or the body was changed")
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise ValueError("timestamp too old: possibly a replayed request")
    event: dict[str, Any] = json.loads(raw_body)
    return event
