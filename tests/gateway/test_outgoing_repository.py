"""The outgoing repository on the real PostgreSQL: plans refused whole, one round per
network, apply_event (facts, events, no-op redeliveries, reorgs), cancel, locks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stablegate_common.core.errors import InvalidState
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.outgoing import repository
from stablegate_gateway.outgoing.repository import InvalidPlan, SigningRoundInFlight
from stablegate_gateway.outgoing.states import InvalidOutgoingTransition, OutgoingEvent
from stablegate_signer import documents
from tests.gateway.outgoing_support import (
    EVM_DEPOSIT,
    EVM_TREASURY,
    events_of,
    evm_plan,
    issue,
    make_batch,
    replace,
    signer,
    snapshot,
    transfers_of,
    tron_plan,
)

E = OutgoingEvent


async def _signed_batch(ctx: GatewayContext, tmp_path: Path) -> str:
    batch_id = await make_batch(ctx, evm_plan())
    request = documents.load_request(await issue(ctx, batch_id))
    signed = documents.dump(signer(tmp_path).sign(request)).encode()
    async with ctx.db.transaction() as session:
        await repository.accept_signed(session, signed, by="test")
    return batch_id


async def test_addresses_are_stored_canonical_and_written_checksummed(
    gateway_ctx: GatewayContext,
) -> None:
    plan = evm_plan()
    plan[1] = replace(plan[1], source_address=EVM_DEPOSIT.lower())
    batch_id = await make_batch(gateway_ctx, plan)
    _, sweep = await transfers_of(gateway_ctx, batch_id)
    assert sweep.source_address == EVM_DEPOSIT.lower()
    assert sweep.destination_address == EVM_TREASURY.lower()
    request = documents.load_request(await issue(gateway_ctx, batch_id))
    assert request.transactions[1].source.address == EVM_DEPOSIT
    # The first event says what was planned.
    event = (await events_of(gateway_ctx, sweep.id))[0]
    assert event["data"]["state"] == "planned"
    assert event["data"]["previous_state"] is None
    assert event["data"]["amount_base_units"] == "25000000"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"amount_base_units": 0}, "amount.base_units"),
        ({"destination_address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"}, "checksum"),
        ({"nonce": None}, "nonce is required"),
        ({"depends_on": "sweep:nobody"}, "not before it"),
        ({"network": "bsc"}, "is on bsc"),
    ],
)
async def test_a_bad_plan_is_refused_whole(
    gateway_ctx: GatewayContext, change: dict[str, object], words: str
) -> None:
    plan = evm_plan()
    plan[1] = replace(plan[1], **change)
    before = await snapshot(gateway_ctx)
    with pytest.raises(InvalidPlan, match=words):
        await make_batch(gateway_ctx, plan)
    assert await snapshot(gateway_ctx) == before


async def test_one_signing_round_per_network(gateway_ctx: GatewayContext, tmp_path: Path) -> None:
    first = await make_batch(gateway_ctx, evm_plan())
    with pytest.raises(SigningRoundInFlight, match=first):
        await make_batch(gateway_ctx, evm_plan(nonce=1))
    await make_batch(gateway_ctx, tron_plan())  # another network is free
    await make_batch(gateway_ctx, evm_plan(nonce=1), kind="replacement")  # allowed
    async with gateway_ctx.db.transaction() as session:
        await repository.cancel_batch(session, first, by="test")


async def test_concurrent_plans_of_one_network_make_one_batch(
    gateway_ctx: GatewayContext,
) -> None:
    results = await asyncio.gather(
        *(make_batch(gateway_ctx, evm_plan()) for _ in range(4)), return_exceptions=True
    )
    made = [r for r in results if isinstance(r, str)]
    assert len(made) == 1
    assert all(isinstance(r, SigningRoundInFlight) for r in results if r not in made)


async def test_apply_event_moves_facts_and_events(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    batch_id = await _signed_batch(gateway_ctx, tmp_path)
    topup, _ = await transfers_of(gateway_ctx, batch_id)
    async with gateway_ctx.db.transaction() as session:
        t = await repository.lock_transfer(session, topup.id)
        await repository.apply_event(session, t, E.BROADCAST_SENT)
        await repository.apply_event(session, t, E.BROADCAST_SENT, last_broadcast_error="x")
        assert t.broadcast_attempts == 2
        assert t.first_broadcast_at is not None
        mined = {"block_number": 7, "block_hash": "0xab", "gas_used": 21_000}
        await repository.apply_event(session, t, None, **mined, fee_paid_base_units=21 * 10**12)
        version = t.version
        await repository.apply_event(session, t, None, **mined)  # a redelivery: no change
        assert t.version == version
        await repository.apply_event(session, t, E.CONFIRMED, receipt_status="success")
        await repository.apply_event(session, t, E.REORGED_OUT)
        assert t.state == "broadcast"
        assert t.block_number is None  # the block is gone
        assert t.fee_paid_base_units is None
        assert t.tx_hash is not None  # the signed bytes stay: re-broadcast the same
    states = [e["data"]["state"] for e in await events_of(gateway_ctx, topup.id)]
    assert states == [
        "planned",
        "awaiting_signature",
        "signed",
        "broadcast",
        "broadcast",
        "broadcast",
        "confirmed",
        "broadcast",
    ]
    sequences = [e["sequence"] for e in await events_of(gateway_ctx, topup.id)]
    assert sequences == list(range(1, 9))


async def test_apply_event_refuses_what_it_must(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    batch_id = await _signed_batch(gateway_ctx, tmp_path)
    topup, _ = await transfers_of(gateway_ctx, batch_id)
    async with gateway_ctx.db.transaction() as session:
        t = await repository.lock_transfer(session, topup.id)
        with pytest.raises(InvalidOutgoingTransition):
            await repository.apply_event(session, t, E.CONFIRMED)  # not broadcast yet
        with pytest.raises(TypeError, match="SIGNATURE_ACCEPTED only"):
            await repository.apply_event(session, t, None, tx_hash="0x" + "0" * 64)
        with pytest.raises(TypeError, match="unknown facts"):
            await repository.apply_event(session, t, None, state="confirmed")
        assert t.state == "signed"


async def test_cancel_takes_what_is_not_broadcast(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    batch_id = await _signed_batch(gateway_ctx, tmp_path)
    topup, _ = await transfers_of(gateway_ctx, batch_id)
    async with gateway_ctx.db.transaction() as session:
        t = await repository.lock_transfer(session, topup.id)
        await repository.apply_event(session, t, E.BROADCAST_SENT)
    async with gateway_ctx.db.transaction() as session:
        batch = await repository.cancel_batch(session, batch_id, by="usr_1")
        assert batch.canceled_by == "usr_1"
    after = await transfers_of(gateway_ctx, batch_id)
    # The signed one may still be mined from the operator's file: `canceling` (watched,
    # in flight) with its bytes dropped and its hash kept, not terminal.
    assert [t.state for t in after] == ["broadcast", "canceling"]
    assert "after its request was issued" in (after[1].failure_reason or "")
    assert (after[1].signed_hex, after[1].tx_hash is not None) == (None, True)
    # Again: nothing left to cancel, but the batch is canceled: the same answer.
    async with gateway_ctx.db.transaction() as session:
        await repository.cancel_batch(session, batch_id, by="usr_1")


async def test_cancel_of_a_fully_broadcast_batch_is_refused(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    batch_id = await _signed_batch(gateway_ctx, tmp_path)
    async with gateway_ctx.db.transaction() as session:
        for t in await repository.batch_transfers(session, batch_id, lock=True):
            await repository.apply_event(session, t, E.BROADCAST_SENT)
    with pytest.raises(InvalidState, match="nothing left"):
        async with gateway_ctx.db.transaction() as session:
            await repository.cancel_batch(session, batch_id, by="x")


async def test_an_expired_tron_request_is_not_issued(gateway_ctx: GatewayContext) -> None:
    batch_id = await make_batch(gateway_ctx, tron_plan(expires_in_ms=1))
    await asyncio.sleep(0.01)
    with pytest.raises(InvalidState, match="expired"):
        await issue(gateway_ctx, batch_id)


async def test_listing_is_newest_first(gateway_ctx: GatewayContext) -> None:
    ids = [await make_batch(gateway_ctx, evm_plan(), kind="replacement") for _ in range(3)]
    async with gateway_ctx.db.sessions() as session:
        listed = [b.id for b in await repository.list_batches(session)]
        page = [b.id for b in await repository.list_batches(session, starting_after=ids[2])]
    assert listed == ids[::-1]
    assert page == ids[1::-1]


async def test_a_reorg_of_a_transfer_never_sent_is_refused(gateway_ctx: GatewayContext) -> None:
    batch_id = await make_batch(gateway_ctx, tron_plan())
    await issue(gateway_ctx, batch_id)
    (transfer,) = await transfers_of(gateway_ctx, batch_id)
    async with gateway_ctx.db.transaction() as session:
        t = await repository.lock_transfer(session, transfer.id)
        await repository.apply_event(session, t, E.EXPIRED)
        assert t.state == "failed"
        with pytest.raises(InvalidOutgoingTransition):
            await repository.apply_event(session, t, E.REORGED_OUT)
        assert t.state == "failed"
