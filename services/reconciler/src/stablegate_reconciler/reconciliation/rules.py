"""What one comparison of the ledger with the chain means, as a pure function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["agree", "resolve", "open", "still_open"]


@dataclass(frozen=True, order=True)
class Holding:
    """The tokens of one asset held at one address on one network."""

    network: str
    asset: str
    address: str


def verdict(*, ledger: int, chain: int, already_open: bool) -> Verdict:
    """`open` a discrepancy when the two first differ, keep it `still_open` while they do,
    `resolve` it when they agree again; `agree` when there is nothing to record."""
    if ledger == chain:
        return "resolve" if already_open else "agree"
    return "still_open" if already_open else "open"
