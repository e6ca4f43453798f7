"""What one comparison of the ledger with the chain means, as a pure function."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["agree", "pending", "resolve", "open", "still_open"]


@dataclass(frozen=True, order=True)
class Holding:
    """The tokens of one asset held at one address on one network."""

    network: str
    asset: str
    address: str


def verdict(
    *,
    ledger: int,
    chain: int,
    already_open: bool,
    in_flight: Sequence[int] = (),
    booked_ahead: int = 0,
) -> Verdict:
    """`open` a discrepancy when the two first differ, keep it `still_open` while they do,
    `resolve` it when they agree again; `agree` when there is nothing to record.

    Outgoing transfers make the chain at the compared block and the books differ for a
    moment, by known amounts: `in_flight` are the token amounts of transfers from this
    holding that may be mined and are not booked yet, `booked_ahead` what the books took
    out for transfers confirmed in a block after the compared one. A chain that differs
    from the ledger by exactly that (all of `booked_ahead`, any of `in_flight`) is
    `pending`: like agreement, not a discrepancy."""
    if ledger == chain:
        return "resolve" if already_open else "agree"
    if explained_by_outflows(ledger=ledger + booked_ahead, chain=chain, outflows=in_flight):
        return "resolve" if already_open else "pending"
    return "still_open" if already_open else "open"


# Above this many in-flight transfers at one holding only their total explains a gap.
_MAX_SUBSETS = 12


def explained_by_outflows(*, ledger: int, chain: int, outflows: Sequence[int]) -> bool:
    """Whether the chain holds what the ledger does less some of `outflows` (none of them
    included: the ledger's figure is already corrected for what is booked ahead). Only
    exact sums count: any other gap stays a discrepancy."""
    gap = ledger - chain
    if gap < 0:
        return False
    if len(outflows) > _MAX_SUBSETS:
        return gap in (0, sum(outflows))
    sums = {0}
    for amount in outflows:
        sums |= {s + amount for s in sums}
    return gap in sums
