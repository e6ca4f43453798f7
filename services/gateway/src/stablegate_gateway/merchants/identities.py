"""Which key a secret is: hash → Principal (key id, merchant, mode), kept by the process.

What a secret's hash maps to never changes (a key's id, merchant and mode are fixed at
creation), so it is kept without expiry, up to a bound, least recently used out first.
Revocation is the one thing about a key that changes, and it is never cached: every
request checks it in the statement that takes its rate-limit token (`ratelimit.service`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from stablegate_common.auth import KeyMode

DEFAULT_CAPACITY = 10_000  # keys in use at once on one replica; each entry is ~300 bytes


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a merchant, through one of its keys."""

    merchant_id: str
    api_key_id: str
    mode: KeyMode
    via: Literal["api_key", "token"]


class KeyIdentities:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, Principal] = OrderedDict()

    def get(self, key_hash: str) -> Principal | None:
        found = self._items.get(key_hash)
        if found is not None:
            self._items.move_to_end(key_hash)
        return found

    def put(self, key_hash: str, identity: Principal) -> None:
        self._items[key_hash] = identity
        self._items.move_to_end(key_hash)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
