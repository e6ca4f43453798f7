"""What a snapshot of an intent, and an update of an outgoing transfer, mean for the
books, as pure functions.

The gateway decides what a transfer means; the ledger only follows: a transfer the
gateway lists as `confirmed` is owed to the merchant, and one it no longer lists as
confirmed (reverted by a reorg, or dropped from the intent) is taken back by a reversing
entry. Postings are signed base units: debits positive, credits negative, and every
entry sums to zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from stablegate_common.core.errors import DomainError

ActionKind = Literal["book", "reverse"]


class UnbalancedEntry(DomainError):
    code = "unbalanced_entry"


@dataclass(frozen=True)
class SnapshotTransfer:
    transfer_id: str
    amount_base_units: int
    status: str  # pending | confirmed | reverted


@dataclass(frozen=True)
class BookingState:
    """What the ledger has done for one transfer so far."""

    transfer_id: str
    intent_id: str
    booked: bool
    amount_base_units: int  # the amount of the last booking (what a reversal takes back)


@dataclass(frozen=True)
class Action:
    transfer_id: str
    kind: ActionKind
    amount_base_units: int


@dataclass(frozen=True)
class Posting:
    account_code: str
    amount_base_units: int  # signed: debit > 0, credit < 0


def asset_account_code(network: str, asset: str, address: str) -> str:
    """The tokens held at one deposit address."""
    return f"asset:{network}:{asset}:{address}"


def liability_account_code(merchant_id: str, network: str, asset: str) -> str:
    """What is owed to one merchant in one asset on one network, and free to pay out."""
    return f"liability:merchant:{merchant_id}:{network}:{asset}"


def reserved_account_code(merchant_id: str, network: str, asset: str) -> str:
    """What is owed to one merchant but held for its refunds and payouts in flight."""
    return f"reserved:merchant:{merchant_id}:{network}:{asset}"


def booking_actions(
    intent_id: str,
    transfers: Sequence[SnapshotTransfer],
    bookings: Mapping[str, BookingState],
) -> list[Action]:
    """The entries a snapshot of `intent_id` calls for, given what is already booked.

    Ordered by transfer id so that two writers lock and post in the same order.
    """
    listed = {t.transfer_id: t for t in transfers}
    actions: list[Action] = []
    for transfer in listed.values():
        state = bookings.get(transfer.transfer_id)
        booked = state is not None and state.booked
        if transfer.status == "confirmed" and not booked:
            if transfer.amount_base_units == 0:
                continue  # nothing moved (a zero-value "poisoning" transfer): nothing to book
            actions.append(Action(transfer.transfer_id, "book", transfer.amount_base_units))
        elif (
            transfer.status != "confirmed"
            and state is not None
            and state.booked
            and state.intent_id == intent_id
        ):
            actions.append(Action(transfer.transfer_id, "reverse", state.amount_base_units))
    for state in bookings.values():
        # A booked transfer the intent no longer lists at all is taken back too; bookings
        # made for another intent are that intent's business.
        if state.intent_id == intent_id and state.booked and state.transfer_id not in listed:
            actions.append(Action(state.transfer_id, "reverse", state.amount_base_units))
    return sorted(actions, key=lambda a: a.transfer_id)


def transfer_postings(
    action: Action, *, asset_account: str, liability_account: str
) -> list[Posting]:
    """Booking debits the deposit address's holding and credits the merchant; a reversal
    does the opposite."""
    amount = action.amount_base_units if action.kind == "book" else -action.amount_base_units
    postings = [Posting(asset_account, amount), Posting(liability_account, -amount)]
    check_balanced(postings)
    return postings


def check_balanced(postings: Iterable[Posting]) -> None:
    items = list(postings)
    if len(items) < 2:
        raise UnbalancedEntry("a journal entry needs at least two postings", param="postings")
    if any(p.amount_base_units == 0 for p in items):
        raise UnbalancedEntry("a posting must move a non-zero amount", param="postings")
    total = sum(p.amount_base_units for p in items)
    if total != 0:
        raise UnbalancedEntry(f"postings sum to {total}, not zero", param="postings")


# --- outgoing transfers (sweeps, fee top-ups, Tron resources, refunds, payouts) -----------
#
# The gateway's `outgoing.transfer.updated` says where one of our transactions stands. The
# books follow its state: `confirmed` books the movement and the network fee, `failed`
# with a fee paid (reverted on chain) books the fee only. A refund or payout, once signed
# and until it settles (`signed`, `broadcast`, `canceling`), reserves its amount of what
# the merchant is owed; anything else books nothing. A transfer whose state no longer
# calls for what is booked (a reorg took it back to `broadcast`, or its fee changed when
# it was mined again) gets reversing entries for exactly what was booked, then what its
# state calls for now: confirming a reserved refund releases the reserve and settles it.
#
# Accounts, per network:
#   asset:{network}:{asset}:{address}    tokens held at an address of ours (reconciled at
#                                        deposit addresses)
#   native:{network}:{coin}:{address}    native coin held at an address of ours: what our
#                                        own transactions moved, not reconciled (the
#                                        watchers report no native transfers from outside)
#   staked:{network}:{coin}:{address}    native coin frozen for resources (Tron stake)
#   treasury:{network}:{asset}           what was swept to the treasury (not ours to check)
#   expense:network_fees:{network}       native coin the network charged us
#   liability:merchant:{m}:{network}:{asset}  owed to the merchant, available
#   reserved:merchant:{m}:{network}:{asset}   owed to the merchant, held for its refunds
#                                             and payouts signed and not settled

LegKind = Literal["movement", "fee", "reserve"]
EntryKind = Literal["outgoing_movement", "network_fee", "outgoing_reserve", "outgoing_reversal"]

# What each purpose moves besides its fee.
MOVING_PURPOSES = frozenset({"sweep", "fee_topup", "stake"})
FEE_ONLY_PURPOSES = frozenset({"resource_delegation", "resource_undelegation"})
# Paid from a merchant's balance: reserved once signed, settled once confirmed.
MERCHANT_PURPOSES = frozenset({"refund", "payout"})
# Signed and not settled: the signed bytes may be mined, so the amount is not available.
RESERVING_STATES = frozenset({"signed", "broadcast", "canceling"})
_ENTRY_KINDS: dict[LegKind, EntryKind] = {
    "movement": "outgoing_movement",
    "fee": "network_fee",
    "reserve": "outgoing_reserve",
}


class UnbookableTransfer(DomainError):
    code = "unbookable_outgoing_transfer"


@dataclass(frozen=True)
class LedgerAccount:
    code: str
    kind: str  # asset | native | external | expense | liability
    network: str
    asset: str
    address: str | None = None
    merchant_id: str | None = None  # liability accounts


@dataclass(frozen=True)
class OutgoingFacts:
    """What one `outgoing.transfer.updated` says, as far as the books care."""

    transfer_id: str
    purpose: str
    state: str
    network: str
    native_coin: str  # the network's native symbol: what fees are paid in
    source_address: str
    destination_address: str | None
    asset: str
    is_token: bool  # False: the native coin itself moves
    amount_base_units: int
    fee_paid_base_units: int | None
    merchant_id: str | None = None  # refunds and payouts: whose balance pays


@dataclass(frozen=True)
class Leg:
    """One balanced journal entry in one asset: (account, signed amount) pairs."""

    kind: LegKind
    asset: str
    postings: tuple[tuple[LedgerAccount, int], ...]


@dataclass(frozen=True)
class OutgoingEntry:
    kind: EntryKind
    asset: str
    postings: tuple[Posting, ...]


def native_account(network: str, coin: str, address: str) -> LedgerAccount:
    return LedgerAccount(f"native:{network}:{coin}:{address}", "native", network, coin, address)


def staked_account(network: str, coin: str, address: str) -> LedgerAccount:
    return LedgerAccount(f"staked:{network}:{coin}:{address}", "native", network, coin, address)


def treasury_account(network: str, asset: str) -> LedgerAccount:
    return LedgerAccount(f"treasury:{network}:{asset}", "external", network, asset)


def fee_expense_account(network: str, coin: str) -> LedgerAccount:
    return LedgerAccount(f"expense:network_fees:{network}", "expense", network, coin)


def merchant_accounts(
    merchant_id: str, network: str, asset: str
) -> tuple[LedgerAccount, LedgerAccount]:
    """What the merchant is owed and free to pay out, and what is reserved of it."""
    return (
        LedgerAccount(
            liability_account_code(merchant_id, network, asset),
            "liability",
            network,
            asset,
            merchant_id=merchant_id,
        ),
        LedgerAccount(
            reserved_account_code(merchant_id, network, asset),
            "liability",
            network,
            asset,
            merchant_id=merchant_id,
        ),
    )


def holding_account(facts: OutgoingFacts, address: str) -> LedgerAccount:
    """Where `facts.asset` sits at one of our addresses: a token holding or native coin."""
    if facts.is_token:
        code = asset_account_code(facts.network, facts.asset, address)
        return LedgerAccount(code, "asset", facts.network, facts.asset, address)
    return native_account(facts.network, facts.asset, address)


def outgoing_legs(facts: OutgoingFacts) -> tuple[Leg, ...]:
    """What the books should hold for this transfer in its current state."""
    if facts.purpose in MERCHANT_PURPOSES and facts.merchant_id is None:
        raise UnbookableTransfer(
            f"{facts.transfer_id}: a {facts.purpose} needs the merchant whose balance pays",
            param="merchant_id",
        )
    if facts.state == "confirmed":
        if facts.fee_paid_base_units is None:
            raise UnbookableTransfer(
                f"{facts.transfer_id} is confirmed without the fee it paid",
                param="fee_paid_base_units",
            )
        return (*_movement(facts), *_fee(facts, facts.fee_paid_base_units))
    if facts.state == "failed" and facts.fee_paid_base_units is not None:
        return _fee(facts, facts.fee_paid_base_units)  # reverted on chain: the gas is spent
    if facts.state in RESERVING_STATES:
        return _reserve(facts)
    return ()


def _reserve(facts: OutgoingFacts) -> tuple[Leg, ...]:
    if facts.purpose not in MERCHANT_PURPOSES or facts.amount_base_units == 0:
        return ()  # the business's own transfers reserve nothing
    assert facts.merchant_id is not None  # outgoing_legs refused it
    available, reserved = merchant_accounts(facts.merchant_id, facts.network, facts.asset)
    amount = facts.amount_base_units
    return (Leg("reserve", facts.asset, ((available, amount), (reserved, -amount))),)


def _movement(facts: OutgoingFacts) -> tuple[Leg, ...]:
    if facts.purpose in FEE_ONLY_PURPOSES or facts.amount_base_units == 0:
        return ()  # a delegation moves no coin between addresses; a zero amount nothing
    if facts.purpose not in MOVING_PURPOSES | MERCHANT_PURPOSES:
        raise UnbookableTransfer(
            f"{facts.transfer_id}: the ledger cannot book a {facts.purpose!r}",
            param="purpose",
        )
    source = holding_account(facts, facts.source_address)
    if facts.purpose == "stake":
        destination = staked_account(facts.network, facts.asset, facts.source_address)
    elif facts.purpose in MERCHANT_PURPOSES:
        # Paid to someone outside: the merchant is owed less, and the tokens are gone.
        assert facts.merchant_id is not None  # outgoing_legs refused it
        destination, _ = merchant_accounts(facts.merchant_id, facts.network, facts.asset)
    elif facts.destination_address is None:
        raise UnbookableTransfer(
            f"{facts.transfer_id}: a {facts.purpose} needs a destination",
            param="destination_address",
        )
    elif facts.purpose == "sweep":
        destination = treasury_account(facts.network, facts.asset)
    else:  # fee_topup: from the fee wallet to an address of ours
        destination = holding_account(facts, facts.destination_address)
    amount = facts.amount_base_units
    return (Leg("movement", facts.asset, ((destination, amount), (source, -amount))),)


def _fee(facts: OutgoingFacts, fee: int) -> tuple[Leg, ...]:
    if fee == 0:
        return ()  # energy and bandwidth from stake or delegation: nothing burned
    expense = fee_expense_account(facts.network, facts.native_coin)
    payer = native_account(facts.network, facts.native_coin, facts.source_address)
    return (Leg("fee", facts.native_coin, ((expense, fee), (payer, -fee))),)


def rebook(target: Sequence[Leg], booked: Sequence[Leg]) -> list[OutgoingEntry]:
    """The entries that take the books from `booked` to `target`: nothing when they are
    the same; otherwise a reversal of every booked leg, then every target leg."""
    if tuple(target) == tuple(booked):
        return []
    entries = [
        OutgoingEntry(
            "outgoing_reversal",
            leg.asset,
            tuple(Posting(account.code, -amount) for account, amount in leg.postings),
        )
        for leg in booked
    ]
    entries.extend(
        OutgoingEntry(
            _ENTRY_KINDS[leg.kind],
            leg.asset,
            tuple(Posting(account.code, amount) for account, amount in leg.postings),
        )
        for leg in target
    )
    for entry in entries:
        check_balanced(entry.postings)
    return entries


def holding_outflow(facts: OutgoingFacts) -> int:
    """Tokens this transfer takes from its source's reconciled holding once mined (0 when
    it moves native coin or nothing): what reconciliation may see gone from the chain
    before the ledger books it, or still there after."""
    if facts.is_token and facts.purpose in MOVING_PURPOSES | MERCHANT_PURPOSES:
        return facts.amount_base_units
    return 0


def merchant_balance_change(
    entries: Sequence[OutgoingEntry], merchant_id: str, network: str, asset: str
) -> tuple[int, int]:
    """How much `entries` change what the merchant has available and has reserved (the
    negated liabilities: credits are negative postings)."""
    available, reserved = (a.code for a in merchant_accounts(merchant_id, network, asset))
    change = {available: 0, reserved: 0}
    for entry in entries:
        for posting in entry.postings:
            if posting.account_code in change:
                change[posting.account_code] -= posting.amount_base_units
    return change[available], change[reserved]


def legs_to_json(legs: Sequence[Leg]) -> list[dict[str, object]]:
    """What is booked, as stored with the transfer's booking (amounts as strings)."""
    return [
        {
            "kind": leg.kind,
            "asset": leg.asset,
            "postings": [
                {
                    "code": account.code,
                    "kind": account.kind,
                    "network": account.network,
                    "asset": account.asset,
                    "address": account.address,
                    "merchant_id": account.merchant_id,
                    "amount": str(amount),
                }
                for account, amount in leg.postings
            ],
        }
        for leg in legs
    ]


def legs_from_json(stored: Sequence[Mapping[str, Any]]) -> tuple[Leg, ...]:
    legs = []
    for leg in stored:
        postings = tuple(
            (
                LedgerAccount(
                    p["code"],
                    p["kind"],
                    p["network"],
                    p["asset"],
                    p["address"],
                    p.get("merchant_id"),  # absent from legs stored before refunds
                ),
                int(p["amount"]),
            )
            for p in leg["postings"]
        )
        legs.append(Leg(leg["kind"], leg["asset"], postings))
    return tuple(legs)
