"""What refunds and payouts book, as pure functions: a table of every state (reserved
once signed, settled once confirmed, the fee alone when reverted on chain, nothing
otherwise), the transitions that matter (reserve then settle is one movement; a revert
releases the reserve and books the fee; a reorg reserves again), and properties over
random histories (every entry balances, the merchant's available and reserved follow the
newest state, the settlement is booked at most once)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stablegate_reconciler.ledger.rules import (
    RESERVING_STATES,
    Leg,
    OutgoingEntry,
    OutgoingFacts,
    UnbookableTransfer,
    holding_outflow,
    legs_from_json,
    legs_to_json,
    merchant_balance_change,
    outgoing_legs,
    rebook,
)

MERCHANT = "mer_refunds"
DEPOSIT = "0x" + "d" * 40
PAYOUT_WALLET = "0x" + "b" * 40
CUSTOMER = "0x" + "c" * 40
AMOUNT = 7_500_000
FEE = 52_000 * 3_000_000_000

OWED = f"liability:merchant:{MERCHANT}:ethereum:USDT"
RESERVED = f"reserved:merchant:{MERCHANT}:ethereum:USDT"
HOLDING = f"asset:ethereum:USDT:{DEPOSIT}"
EXPENSE = "expense:network_fees:ethereum"
GAS = f"native:ethereum:ETH:{DEPOSIT}"

STATES = (
    "planned",
    "awaiting_signature",
    "signed",
    "broadcast",
    "confirmed",
    "failed",
    "canceled",
    "replaced",
    "canceling",
)


def refund(**overrides: Any) -> OutgoingFacts:
    """A USDT refund from the intent's deposit address to the customer's address."""
    values: dict[str, Any] = {
        "transfer_id": "ot_refund",
        "purpose": "refund",
        "state": "confirmed",
        "network": "ethereum",
        "native_coin": "ETH",
        "source_address": DEPOSIT,
        "destination_address": CUSTOMER,
        "asset": "USDT",
        "is_token": True,
        "amount_base_units": AMOUNT,
        "fee_paid_base_units": FEE,
        "merchant_id": MERCHANT,
    }
    values.update(overrides)
    return OutgoingFacts(**values)


def payout(**overrides: Any) -> OutgoingFacts:
    values: dict[str, Any] = {
        "transfer_id": "ot_payout",
        "purpose": "payout",
        "source_address": PAYOUT_WALLET,
    }
    values.update(overrides)
    return refund(**values)


def postings(legs: Sequence[Leg]) -> list[dict[str, int]]:
    return [{account.code: amount for account, amount in leg.postings} for leg in legs]


def net(entries: Sequence[OutgoingEntry]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for entry in entries:
        for posting in entry.postings:
            total[posting.account_code] += posting.amount_base_units
    return {code: amount for code, amount in total.items() if amount}


def legs_net(legs: Sequence[Leg]) -> dict[str, int]:
    return net(rebook(legs, ()))


RESERVE = {OWED: AMOUNT, RESERVED: -AMOUNT}
SETTLEMENT = {OWED: AMOUNT, HOLDING: -AMOUNT}
FEE_LEG = {EXPENSE: FEE, GAS: -FEE}


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(refund(state="planned"), [], id="planned"),
        pytest.param(refund(state="awaiting_signature"), [], id="awaiting-signature"),
        pytest.param(refund(state="signed", fee_paid_base_units=None), [RESERVE], id="signed"),
        pytest.param(
            refund(state="broadcast", fee_paid_base_units=None), [RESERVE], id="broadcast"
        ),
        pytest.param(refund(state="broadcast"), [RESERVE], id="mined-not-final-still-reserved"),
        pytest.param(
            refund(state="canceling", fee_paid_base_units=None),
            [RESERVE],
            id="canceled-after-signing-may-still-be-mined",
        ),
        pytest.param(refund(), [SETTLEMENT, FEE_LEG], id="confirmed"),
        pytest.param(refund(state="failed"), [FEE_LEG], id="reverted-on-chain-fee-only"),
        pytest.param(refund(state="failed", fee_paid_base_units=None), [], id="failed-unmined"),
        pytest.param(refund(state="canceled", fee_paid_base_units=None), [], id="canceled"),
        pytest.param(refund(state="replaced", fee_paid_base_units=None), [], id="replaced"),
        pytest.param(refund(fee_paid_base_units=0), [SETTLEMENT], id="confirmed-fee-free"),
        pytest.param(
            payout(state="signed"),
            [{OWED: AMOUNT, RESERVED: -AMOUNT}],
            id="payout-signed",
        ),
        pytest.param(
            payout(),
            [
                {OWED: AMOUNT, f"asset:ethereum:USDT:{PAYOUT_WALLET}": -AMOUNT},
                {EXPENSE: FEE, f"native:ethereum:ETH:{PAYOUT_WALLET}": -FEE},
            ],
            id="payout-from-the-payout-wallet",
        ),
        pytest.param(
            payout(asset="ETH", is_token=False, amount_base_units=10**16, fee_paid_base_units=21),
            [
                {
                    f"liability:merchant:{MERCHANT}:ethereum:ETH": 10**16,
                    f"native:ethereum:ETH:{PAYOUT_WALLET}": -(10**16),
                },
                {EXPENSE: 21, f"native:ethereum:ETH:{PAYOUT_WALLET}": -21},
            ],
            id="payout-in-native-coin",
        ),
        pytest.param(refund(state="signed", amount_base_units=0), [], id="nothing-to-reserve"),
    ],
)
def test_what_a_refund_or_payout_books_in_each_state(
    facts: OutgoingFacts, expected: list[dict[str, int]]
) -> None:
    legs = outgoing_legs(facts)

    assert postings(legs) == expected
    for leg in legs:
        assert sum(amount for _, amount in leg.postings) == 0


def test_the_reserve_and_the_settlement_name_the_merchant_on_their_accounts() -> None:
    [reserve] = outgoing_legs(refund(state="signed"))
    assert {(a.code, a.kind, a.merchant_id) for a, _ in reserve.postings} == {
        (OWED, "liability", MERCHANT),
        (RESERVED, "liability", MERCHANT),
    }
    assert legs_from_json(legs_to_json([reserve])) == (reserve,)


@pytest.mark.parametrize("state", STATES)
def test_a_refund_or_payout_without_its_merchant_is_refused_in_any_state(state: str) -> None:
    for facts in (refund(state=state, merchant_id=None), payout(state=state, merchant_id=None)):
        with pytest.raises(UnbookableTransfer) as refused:
            outgoing_legs(facts)
        assert refused.value.param == "merchant_id"


def test_legs_stored_before_refunds_read_back_without_a_merchant() -> None:
    stored = [
        {
            "kind": "movement",
            "asset": "USDT",
            "postings": [
                {
                    "code": "treasury:ethereum:USDT",
                    "kind": "external",
                    "network": "ethereum",
                    "asset": "USDT",
                    "address": None,
                    "amount": "5",
                },
                {
                    "code": HOLDING,
                    "kind": "asset",
                    "network": "ethereum",
                    "asset": "USDT",
                    "address": DEPOSIT,
                    "amount": "-5",
                },
            ],
        }
    ]
    [leg] = legs_from_json(stored)
    assert all(account.merchant_id is None for account, _ in leg.postings)


def test_reserve_then_settle_is_one_movement_and_the_reserve_is_gone() -> None:
    reserved = outgoing_legs(refund(state="signed", fee_paid_base_units=None))
    settled = outgoing_legs(refund())
    reserving = rebook(reserved, ())
    settling = rebook(settled, reserved)

    assert [e.kind for e in reserving] == ["outgoing_reserve"]
    assert [e.kind for e in settling] == ["outgoing_reversal", "outgoing_movement", "network_fee"]
    assert net([*reserving, *settling]) == {**SETTLEMENT, **FEE_LEG}
    assert merchant_balance_change(reserving, MERCHANT, "ethereum", "USDT") == (-AMOUNT, AMOUNT)
    # Settling: nothing more leaves what is available; the reserve is used up.
    assert merchant_balance_change(settling, MERCHANT, "ethereum", "USDT") == (0, -AMOUNT)


def test_a_revert_releases_the_reserve_and_books_the_fee_only() -> None:
    reserved = outgoing_legs(refund(state="broadcast", fee_paid_base_units=None))
    reverted = rebook(outgoing_legs(refund(state="failed")), reserved)

    assert [e.kind for e in reverted] == ["outgoing_reversal", "network_fee"]
    assert net([*rebook(reserved, ()), *reverted]) == FEE_LEG
    assert merchant_balance_change(reverted, MERCHANT, "ethereum", "USDT") == (AMOUNT, -AMOUNT)


@pytest.mark.parametrize("state", ["canceled", "replaced", "failed", "planned"])
def test_an_unmined_end_releases_the_reserve(state: str) -> None:
    reserved = outgoing_legs(refund(state="signed", fee_paid_base_units=None))
    released = rebook(outgoing_legs(refund(state=state, fee_paid_base_units=None)), reserved)

    assert [e.kind for e in released] == ["outgoing_reversal"]
    assert net([*rebook(reserved, ()), *released]) == {}
    assert merchant_balance_change(released, MERCHANT, "ethereum", "USDT") == (AMOUNT, -AMOUNT)


def test_a_reorg_reserves_again_and_the_next_confirmation_settles_again() -> None:
    settled = outgoing_legs(refund())
    back = outgoing_legs(refund(state="broadcast", fee_paid_base_units=None))
    reorged = rebook(back, settled)

    assert [e.kind for e in reorged] == [
        "outgoing_reversal",
        "outgoing_reversal",
        "outgoing_reserve",
    ]
    assert net([*rebook(settled, ()), *reorged]) == RESERVE
    assert merchant_balance_change(reorged, MERCHANT, "ethereum", "USDT") == (0, AMOUNT)

    again = outgoing_legs(refund(fee_paid_base_units=FEE + 3))
    resettled = rebook(again, back)
    assert net([*rebook(settled, ()), *reorged, *resettled]) == {
        **SETTLEMENT,
        EXPENSE: FEE + 3,
        GAS: -(FEE + 3),
    }


def test_signed_then_broadcast_changes_nothing() -> None:
    signed = outgoing_legs(refund(state="signed", fee_paid_base_units=None))
    assert rebook(outgoing_legs(refund(state="broadcast", fee_paid_base_units=None)), signed) == []
    assert rebook(outgoing_legs(refund(state="canceling", fee_paid_base_units=None)), signed) == []


def test_a_refund_takes_tokens_from_its_source_holding() -> None:
    assert holding_outflow(refund(state="broadcast")) == AMOUNT
    assert holding_outflow(payout(state="canceling")) == AMOUNT
    assert holding_outflow(payout(asset="ETH", is_token=False)) == 0  # native: not reconciled


def test_the_balance_change_of_another_merchant_or_asset_is_nothing() -> None:
    entries = rebook(outgoing_legs(refund(state="signed")), ())
    assert merchant_balance_change(entries, "mer_other", "ethereum", "USDT") == (0, 0)
    assert merchant_balance_change(entries, MERCHANT, "bsc", "USDT") == (0, 0)
    assert merchant_balance_change(entries, MERCHANT, "ethereum", "USDC") == (0, 0)


BASES = st.sampled_from(
    [refund(), payout(), payout(asset="ETH", is_token=False, amount_base_units=10**17)]
)
HISTORIES = st.lists(
    st.tuples(
        st.sampled_from(STATES),
        st.one_of(st.none(), st.integers(min_value=0, max_value=10**20)),
    ),
    min_size=1,
    max_size=14,
)


@given(base=BASES, history=HISTORIES, amount=st.integers(min_value=0, max_value=10**30))
def test_any_history_keeps_the_books_balanced_and_the_balance_on_the_newest_state(
    base: OutgoingFacts, history: list[tuple[str, int | None]], amount: int
) -> None:
    base = replace(base, amount_base_units=amount)
    owed, reserved = (
        f"{kind}:merchant:{MERCHANT}:ethereum:{base.asset}" for kind in ("liability", "reserved")
    )
    holding = (
        f"{'asset' if base.is_token else 'native'}:ethereum:{base.asset}:{base.source_address}"
    )
    booked: tuple[Leg, ...] = ()
    posted: list[OutgoingEntry] = []
    available_change = reserved_change = 0
    for state, fee in history:
        facts = replace(base, state=state, fee_paid_base_units=fee)
        if state == "confirmed" and fee is None:
            continue  # refused: nothing changes
        target = outgoing_legs(facts)
        entries = rebook(target, booked)
        for entry in entries:
            assert sum(p.amount_base_units for p in entry.postings) == 0
            assert all(p.amount_base_units != 0 for p in entry.postings)
        got = merchant_balance_change(entries, MERCHANT, "ethereum", base.asset)
        available_change, reserved_change = available_change + got[0], reserved_change + got[1]
        posted.extend(entries)
        booked = legs_from_json(legs_to_json(target))
        assert booked == target

        books = net(posted)
        assert books == legs_net(booked)
        held = amount if state in RESERVING_STATES else 0
        settled = amount if state == "confirmed" else 0
        assert books.get(reserved, 0) == -held
        assert -books.get(owed, 0) - books.get(reserved, 0) == -settled  # owed in total
        assert (available_change, reserved_change) == (-held - settled, held)
        if base.is_token:
            assert books.get(holding, 0) == -settled
        paid = fee if state in ("confirmed", "failed") and fee else 0
        assert books.get("expense:network_fees:ethereum", 0) == paid
