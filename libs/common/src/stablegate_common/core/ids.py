"""Prefixed, time-sortable identifiers (`pi_01J…`), Stripe style.

48 bits of milliseconds then 80 random bits in Crockford base32 (ULID layout), so ids
sort by creation time and cursor pagination can order by id.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

PREFIXES = frozenset(
    {
        "pi",
        "tr",
        "we",
        "whd",
        "evt",
        "mer",
        "key",
        "req",
        "addr",
        "le",
        "rec",
        "disc",
        "usr",
        "ob",
        "ot",
        "re",  # refund
        "po",  # payout
    }
)


def ulid(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{ulid()}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27
