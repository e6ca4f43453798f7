"""Keeping a refund or payout in step with the outgoing transfers that carry it.

`outgoing.repository` calls `follow_transfer` in the same transaction as every change of
a transfer whose purpose is `refund` or `payout`: the status is re-derived from all its
carriers (`states.derive_status`), the hash, fee and failure are copied, and the merchant
hears of an outcome. One whose carriers are all provably dead goes back to `pending`
without a transfer, and the next round plans it again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_gateway.disbursements import records
from stablegate_gateway.disbursements.models import Disbursement
from stablegate_gateway.disbursements.states import (
    CarrierState,
    DisbursementStatus,
    derive_status,
    needs_plan,
)
from stablegate_gateway.outgoing.models import OutgoingTransfer
from stablegate_gateway.outgoing.states import OutgoingState

log = logging.getLogger(__name__)

CARRYING_PURPOSES = frozenset({"refund", "payout"})
# Signed bytes exist for these: they may be (or are) mined.
_MINABLE = frozenset(
    {
        OutgoingState.SIGNED,
        OutgoingState.BROADCAST,
        OutgoingState.CANCELING,
        OutgoingState.CONFIRMED,
    }
)
TWO_LIVE = Counter(
    "stablegate_disbursement_two_live_carriers_total",
    "A refund or payout with two transactions that could both be mined (not one nonce): a "
    "carrier given up came back after it was planned again (a reorg past the depth the "
    "gateway trusted)",
    ["network", "kind"],
)
# The carrier that speaks for the disbursement, best first.
_RANK = {
    OutgoingState.CONFIRMED: 0,
    OutgoingState.BROADCAST: 1,
    OutgoingState.SIGNED: 2,
    OutgoingState.CANCELING: 3,
    OutgoingState.AWAITING_SIGNATURE: 4,
    OutgoingState.PLANNED: 5,
    OutgoingState.FAILED: 6,
}


async def follow_transfer(session: AsyncSession, transfer: OutgoingTransfer) -> None:
    if transfer.purpose not in CARRYING_PURPOSES or transfer.reference is None:
        return
    disbursement = await session.scalar(
        select(Disbursement)
        .where(Disbursement.id == transfer.reference)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if disbursement is None:
        return  # planned by hand (an ops tool) for no refund or payout of ours
    carriers = list(
        await session.scalars(
            select(OutgoingTransfer).where(
                OutgoingTransfer.reference == disbursement.id,
                OutgoingTransfer.purpose.in_(sorted(CARRYING_PURPOSES)),
            )
        )
    )
    states = [
        CarrierState(
            OutgoingState(c.state), c.block_number is not None or c.receipt_status is not None
        )
        for c in carriers
    ]
    _check_one_live(disbursement, carriers)
    status = derive_status(states, canceled_by_merchant=disbursement.canceled_by is not None)
    live = sorted(
        (c for c in carriers if OutgoingState(c.state) in _RANK),
        key=lambda c: (_RANK[OutgoingState(c.state)], c.created_at or datetime.now(UTC)),
    )
    speaker = live[0] if live else None
    if needs_plan(status, states):
        _detach(disbursement)
    elif speaker is not None:
        disbursement.transfer_id = speaker.id
        disbursement.tx_hash = speaker.tx_hash
        disbursement.network_fee_base_units = speaker.fee_paid_base_units
    reason = None
    if status is DisbursementStatus.FAILED and speaker is not None:
        reason = speaker.failure_reason or "the transaction reverted on chain"
    await records.change_status(session, disbursement, status, reason=reason)
    await session.flush()


def _check_one_live(disbursement: Disbursement, carriers: list[OutgoingTransfer]) -> None:
    """Carriers sharing an EVM nonce exclude each other (a fee bump and its original); any
    two others that could both be mined would pay twice: say so loudly."""
    exclusive = {
        (c.source_address, c.nonce) if c.nonce is not None else c.id
        for c in carriers
        if OutgoingState(c.state) in _MINABLE
    }
    if len(exclusive) > 1:
        TWO_LIVE.labels(disbursement.network, disbursement.kind).inc()
        log.error(
            "refund or payout with two minable transactions",
            extra={"disbursement": disbursement.id, "transfers": sorted(c.id for c in carriers)},
        )


def _detach(disbursement: Disbursement) -> None:
    """Nothing of it should be mined any more: the next round plans it again, from the
    same source (`source_address` is kept: `planning` pins it). Should a given-up
    transaction come back all the same (a reorg past the trusted depth), both spend one
    address's funds, and the second reverts where they do not cover both."""
    disbursement.transfer_id = None
    disbursement.tx_hash = None
    disbursement.network_fee_base_units = None
