"""A refund's or payout's status from the outgoing transfers that carry it (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stablegate_gateway.disbursements.states import (
    CarrierState,
    DisbursementStatus,
    derive_status,
    needs_plan,
)
from stablegate_gateway.outgoing.consumers import replacement_plan
from stablegate_gateway.outgoing.models import OutgoingTransfer
from stablegate_gateway.outgoing.states import OutgoingState

S = OutgoingState
D = DisbursementStatus


def c(state: OutgoingState, *, mined: bool = False) -> CarrierState:
    return CarrierState(state, mined)


@pytest.mark.parametrize(
    ("carriers", "canceled", "status", "plan"),
    [
        ([], False, D.PENDING, True),
        ([], True, D.CANCELED, False),
        ([c(S.PLANNED)], False, D.PENDING, False),
        ([c(S.AWAITING_SIGNATURE)], False, D.AWAITING_SIGNATURE, False),
        ([c(S.SIGNED)], False, D.PROCESSING, False),
        ([c(S.BROADCAST)], False, D.PROCESSING, False),
        # Canceled after its request was issued: signed bytes may exist and be mined.
        ([c(S.CANCELING)], True, D.PROCESSING, False),
        ([c(S.CONFIRMED, mined=True)], False, D.SUCCEEDED, False),
        ([c(S.FAILED, mined=True)], False, D.FAILED, False),
        # Expired unmined (Tron), or a round canceled before signing: planned again.
        ([c(S.FAILED)], False, D.PENDING, True),
        ([c(S.CANCELED)], False, D.PENDING, True),
        ([c(S.REPLACED)], False, D.PENDING, True),
        ([c(S.CANCELED)], True, D.CANCELED, False),
        # A re-plan after an expiry: the new carrier speaks.
        ([c(S.FAILED), c(S.BROADCAST)], False, D.PROCESSING, False),
        ([c(S.FAILED), c(S.CONFIRMED, mined=True)], False, D.SUCCEEDED, False),
        # A fee bump: the original replaced, the replacement confirmed.
        ([c(S.REPLACED), c(S.CONFIRMED, mined=True)], False, D.SUCCEEDED, False),
        # A reverted one and a live one: the live one decides.
        ([c(S.FAILED, mined=True), c(S.AWAITING_SIGNATURE)], False, D.AWAITING_SIGNATURE, False),
        # A merchant's cancel never hides money that moved.
        ([c(S.CONFIRMED, mined=True)], True, D.SUCCEEDED, False),
    ],
)
def test_status_from_carriers(
    carriers: list[CarrierState], canceled: bool, status: D, plan: bool
) -> None:
    derived = derive_status(carriers, canceled_by_merchant=canceled)

    assert derived is status
    assert needs_plan(derived, carriers) is plan


carrier = st.builds(CarrierState, st.sampled_from(list(OutgoingState)), st.booleans())


@given(st.lists(carrier, max_size=5), st.booleans())
def test_never_planned_again_while_anything_could_still_be_mined(
    carriers: list[CarrierState], canceled: bool
) -> None:
    """The double-payment guard: a new transfer is planned only when every carrier is
    provably dead (nothing signed, in flight, or waiting for a signature)."""
    status = derive_status(carriers, canceled_by_merchant=canceled)
    live = {S.PLANNED, S.AWAITING_SIGNATURE, S.SIGNED, S.BROADCAST, S.CANCELING, S.CONFIRMED}

    if needs_plan(status, carriers):
        assert not any(x.state in live for x in carriers)
    if any(x.state is S.CONFIRMED for x in carriers):
        assert status is D.SUCCEEDED
    if status is D.CANCELED:
        assert canceled
        assert not any(x.state in live for x in carriers)


def test_a_fee_bump_of_a_refund_keeps_whose_balance_pays() -> None:
    original = OutgoingTransfer(
        id="ot_1", purpose="refund", network="ethereum", source_address="0x" + "1" * 40,
        source_path="m/44'/60'/0'/0/1", destination_address="0x" + "2" * 40,
        destination_path=None, asset="USDT", token_contract="0x" + "3" * 40, decimals=6,
        amount_base_units=5, reference="re_1", merchant_id="mer_1", chain_id=1, nonce=4,
        gas_limit=60_000, max_fee_per_gas=100, max_priority_fee_per_gas=2,
    )  # fmt: skip

    bump = replacement_plan(original)

    assert (bump.merchant_id, bump.reference, bump.nonce) == ("mer_1", "re_1", 4)
    assert bump.max_fee_per_gas == 113
