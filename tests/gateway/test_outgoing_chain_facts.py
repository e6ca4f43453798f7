"""The chain.tx.* consumer and the broadcaster against the review's scenarios (real
PostgreSQL, the real signer in process, anvil where a chain is asked):

- a stale `confirmed` redelivered after the `reorged` that followed it is dropped;
- a fee bump mined at depth 1 supersedes nothing; confirmed, it does; the original found
  mined after all comes back and is booked, and a reorg of the winner puts the loser back;
- a sweep whose top-up was fee-bumped waits for the bump, and dies with the whole chain;
- an EVM transfer whose nonce another transaction used is not "sent", and ends replaced
  once that nonce is finalized (its bumps not yet signed too); no bump is planned or
  accepted for a nonce already mined;
- a batch canceled after signing is `canceling`: watched, in flight on Tron, ended only
  when it provably cannot be mined, booked when it is mined all the same;
- a Tron transfer failed by expiry and then found mined is reopened, booked, and the
  re-plan of its source not yet signed is canceled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import update

from devnet.tron import TronDevnet
from stablegate_common.chains.evm import EvmClient
from stablegate_common.chains.tron import TronClient
from stablegate_common.events import Event, make_event
from stablegate_common.events.contracts import (
    ChainTxConfirmed,
    ChainTxFields,
    ChainTxMined,
    ChainTxNotFound,
    ChainTxReorged,
)
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.outgoing import metrics, repository
from stablegate_gateway.outgoing.api import present_transfer
from stablegate_gateway.outgoing.broadcaster import Broadcaster, dependency_outcome
from stablegate_gateway.outgoing.consumers import plan_stuck_replacements
from stablegate_gateway.outgoing.models import OutgoingTransfer
from stablegate_gateway.outgoing.states import OutgoingEvent
from stablegate_signer import documents
from tests.fixtures.anvil import AnvilChain
from tests.gateway.outgoing_support import (
    EVM_FEE,
    events_of,
    evm_plan,
    issue,
    make_batch,
    signer,
    transfers_of,
    tron_plan,
)
from tests.gateway.test_outgoing_broadcaster import (
    deliver,
    sign_and_accept,
    signed_evm_batch,
    state_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def evm(anvil: AnvilChain) -> AsyncIterator[EvmClient]:
    client = EvmClient(anvil.rpc_url, timeout_seconds=5)
    try:
        yield client
    finally:
        await client.close()


E = OutgoingEvent
_SEQUENCE = itertools.count(1)
BLOCK_TIME = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def fact(
    cls: type[ChainTxFields],
    transfer: OutgoingTransfer,
    *,
    block: int = 100,
    block_hash: str | None = None,
    success: bool = True,
    sequence: int | None = None,
) -> Event:
    """A watcher's fact about `transfer`'s hash, as the watcher words it."""
    tron = transfer.network == "tron"
    payload = cls(
        network=transfer.network,
        tx_hash=transfer.tx_hash or "",
        block_number=block,
        block_hash=block_hash or ("0x" + f"{block:064x}"),
        block_timestamp=BLOCK_TIME,
        success=success,
        gas_used=None if tron else 21_000,
        effective_gas_price=None if tron else 10**9,
        energy_used=64_000 if tron else None,
        bandwidth_used=345 if tron else None,
        fee_paid_base_units=13_000_000 if tron else 21_000 * 10**9,
        confirmations=3,
        confirmations_required=3,
    )
    return make_event(
        payload,
        producer="test",
        subject=f"{transfer.network}:{transfer.tx_hash}",
        sequence=next(_SEQUENCE) if sequence is None else sequence,
    )


def not_found(transfer: OutgoingTransfer, head_ms: int) -> Event:
    payload = ChainTxNotFound(
        network=transfer.network,
        tx_hash=transfer.tx_hash or "",
        checked_at=datetime.now(UTC),
        head_block=100,
        head_timestamp=datetime.fromtimestamp(head_ms / 1000, tz=UTC),
    )
    return make_event(payload, producer="test", subject="x", sequence=next(_SEQUENCE))


async def mark_sent(ctx: GatewayContext, transfer_id: str) -> OutgoingTransfer:
    async with ctx.db.transaction() as session:
        transfer = await repository.lock_transfer(session, transfer_id)
        await repository.apply_event(session, transfer, E.BROADCAST_SENT)
    return await state_of(ctx, transfer_id)


async def cancel(ctx: GatewayContext, batch_id: str) -> None:
    async with ctx.db.transaction() as session:
        await repository.cancel_batch(session, batch_id, by="usr_ops")


async def signed_batch(ctx: GatewayContext, plan: list[Any], tmp_path: Path) -> str:
    batch_id = await make_batch(ctx, plan)
    await sign_and_accept(ctx, batch_id, tmp_path)
    return batch_id


async def bumped_topup(
    ctx: GatewayContext, tmp_path: Path
) -> tuple[OutgoingTransfer, OutgoingTransfer, OutgoingTransfer]:
    """(top-up, its sweep, the top-up's fee bump): the top-up and the bump broadcast."""
    batch_id = await signed_batch(ctx, evm_plan(), tmp_path)
    topup, sweep = await transfers_of(ctx, batch_id)
    await mark_sent(ctx, topup.id)
    later = datetime.now(UTC) + timedelta(seconds=601)
    async with ctx.db.transaction() as session:
        [bump_batch] = await plan_stuck_replacements(
            session, stuck_seconds=600, native_symbols={}, now=later
        )
    await sign_and_accept(ctx, bump_batch, tmp_path)
    [bump] = await transfers_of(ctx, bump_batch)
    bump = await mark_sent(ctx, bump.id)
    return await state_of(ctx, topup.id), sweep, bump


# -- finding 6: stale facts ---------------------------------------------------------------


async def test_a_stale_confirmed_redelivered_after_its_reorg_is_dropped(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    batch_id = await signed_batch(gateway_ctx, evm_plan(), tmp_path)
    topup, sweep = await transfers_of(gateway_ctx, batch_id)
    topup = await mark_sent(gateway_ctx, topup.id)
    confirmed = fact(ChainTxConfirmed, topup, sequence=2)
    await deliver(gateway_ctx, fact(ChainTxMined, topup, sequence=1))
    await deliver(gateway_ctx, confirmed)
    assert (await state_of(gateway_ctx, topup.id)).state == "confirmed"
    await deliver(gateway_ctx, fact(ChainTxReorged, topup, sequence=3))
    assert (await state_of(gateway_ctx, topup.id)).state == "broadcast"

    await deliver(gateway_ctx, confirmed)  # redelivered late (a replica died holding it)
    after = await state_of(gateway_ctx, topup.id)
    assert (after.state, after.block_number, after.chain_sequence) == ("broadcast", None, 3)
    async with gateway_ctx.db.sessions() as session:
        assert await dependency_outcome(session, topup.id) == "pending"
    # The next real fact (a higher sequence) applies as usual.
    await deliver(gateway_ctx, fact(ChainTxConfirmed, topup, block=101, sequence=5))
    assert (await state_of(gateway_ctx, topup.id)).state == "confirmed"
    assert (await state_of(gateway_ctx, sweep.id)).state == "signed"


# -- finding 3: supersede only on confirmed; found mined; reinstated ----------------------


async def test_the_original_mined_after_the_bump_was_confirmed_and_reorged_is_booked(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    topup, _, bump = await bumped_topup(gateway_ctx, tmp_path)
    await deliver(gateway_ctx, fact(ChainTxMined, bump, block=100))
    # Depth 1 proves nothing: the original is still in flight (and still watched).
    assert (await state_of(gateway_ctx, topup.id)).state == "broadcast"
    await deliver(gateway_ctx, fact(ChainTxConfirmed, bump, block=100))
    assert (await state_of(gateway_ctx, topup.id)).state == "replaced"

    # A reorg: the new branch holds the original. Its mined fact arrives first, while the
    # bump is still in a block: per-hash sequences cannot order it against the bump's
    # facts (it may as well be a stale one from an orphaned block), so it is dropped.
    await deliver(gateway_ctx, fact(ChainTxMined, topup, block=100, block_hash="0x" + "c" * 64))
    dropped = await state_of(gateway_ctx, topup.id)
    assert (dropped.state, dropped.block_number) == ("replaced", None)
    # The bump's reorg reinstates it; the watcher, tracking it again, reports it anew.
    await deliver(gateway_ctx, fact(ChainTxReorged, bump, block=100))
    assert (await state_of(gateway_ctx, bump.id)).state == "broadcast"
    assert (await state_of(gateway_ctx, topup.id)).state == "broadcast"
    await deliver(gateway_ctx, fact(ChainTxMined, topup, block=100, block_hash="0x" + "c" * 64))
    found = await state_of(gateway_ctx, topup.id)
    assert (found.state, found.block_number) == ("broadcast", 100)
    await deliver(gateway_ctx, fact(ChainTxConfirmed, topup, block=100, block_hash="0x" + "c" * 64))
    booked = await state_of(gateway_ctx, topup.id)
    assert (booked.state, booked.fee_paid_base_units) == ("confirmed", 21_000 * 10**9)
    assert (await state_of(gateway_ctx, bump.id)).state == "replaced"


async def test_a_reorg_of_the_winner_puts_the_superseded_sibling_back_in_flight(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    topup, _, bump = await bumped_topup(gateway_ctx, tmp_path)
    await deliver(gateway_ctx, fact(ChainTxMined, bump))
    await deliver(gateway_ctx, fact(ChainTxConfirmed, bump))
    assert (await state_of(gateway_ctx, topup.id)).state == "replaced"
    await deliver(gateway_ctx, fact(ChainTxReorged, bump))
    back = await state_of(gateway_ctx, topup.id)
    assert back.state == "broadcast"
    assert "reorged out" in (back.failure_reason or "")
    # Announced as broadcast again: the watcher tracks its hash again.
    assert (await events_of(gateway_ctx, topup.id))[-1]["data"]["state"] == "broadcast"


# -- finding 4: a dependency through its fee bumps ----------------------------------------


async def test_a_sweep_waits_for_the_bump_of_its_top_up_and_dies_with_the_chain(
    gateway_ctx: GatewayContext, anvil: AnvilChain, tmp_path: Path
) -> None:
    topup, sweep, bump = await bumped_topup(gateway_ctx, tmp_path)
    client = EvmClient(anvil.rpc_url, timeout_seconds=5)
    try:
        broadcaster = Broadcaster(gateway_ctx.db, {"ethereum": client}, rebroadcast_seconds=30)
        await deliver(gateway_ctx, fact(ChainTxMined, bump))
        await deliver(gateway_ctx, fact(ChainTxConfirmed, bump))
        assert (await state_of(gateway_ctx, topup.id)).state == "replaced"
        assert sweep.id in await broadcaster._due(datetime.now(UTC))
        assert await broadcaster.fail_dependents() == 0
    finally:
        await client.close()


async def test_a_sweep_whose_top_up_and_bump_all_failed_is_given_up(
    gateway_ctx: GatewayContext, anvil: AnvilChain, tmp_path: Path
) -> None:
    topup, sweep, bump = await bumped_topup(gateway_ctx, tmp_path)
    client = EvmClient(anvil.rpc_url, timeout_seconds=5)
    try:
        broadcaster = Broadcaster(gateway_ctx.db, {"ethereum": client}, rebroadcast_seconds=30)
        # The original is confirmed reverted (it took the nonce): the bump is replaced,
        # and the bump chain holds nothing confirmed. The sweep can never be paid for.
        await deliver(gateway_ctx, fact(ChainTxConfirmed, topup, success=False))
        assert (await state_of(gateway_ctx, bump.id)).state == "replaced"
        async with gateway_ctx.db.sessions() as session:
            assert await dependency_outcome(session, topup.id) == "dead"
        assert sweep.id not in await broadcaster._due(datetime.now(UTC))
        assert await broadcaster.fail_dependents() == 1
        given_up = await state_of(gateway_ctx, sweep.id)
        assert given_up.state == "canceling"  # signed: its bytes exist
    finally:
        await client.close()


# -- finding 1: a nonce used by another transaction ----------------------------------------


async def _spend_nonce(anvil: AnvilChain, address: str) -> str:
    """Another transaction from `address` (its key elsewhere), with its next nonce."""
    await anvil.rpc("anvil_impersonateAccount", address)
    tx_hash: str = await anvil.rpc(
        "eth_sendTransaction",
        {"from": address, "to": "0x000000000000000000000000000000000000dEaD", "value": "0x1"},
    )
    await anvil.rpc("anvil_stopImpersonatingAccount", address)
    await anvil.receipt(tx_hash)
    return tx_hash


async def test_a_transfer_whose_nonce_another_transaction_used_is_not_sent(
    gateway_ctx: GatewayContext, isolated_anvil: AnvilChain, evm: EvmClient, tmp_path: Path
) -> None:
    anvil = isolated_anvil
    batch_id = await signed_evm_batch(gateway_ctx, anvil, tmp_path)
    topup, sweep = await transfers_of(gateway_ctx, batch_id)
    # A fee bump of it waits for a signature (planned while it was stuck).
    await mark_sent(gateway_ctx, topup.id)
    later = datetime.now(UTC) + timedelta(seconds=601)
    async with gateway_ctx.db.transaction() as session:
        [bump_batch] = await plan_stuck_replacements(
            session, stuck_seconds=600, native_symbols={}, now=later
        )
    await issue(gateway_ctx, bump_batch)
    [bump] = await transfers_of(gateway_ctx, bump_batch)

    await _spend_nonce(anvil, EVM_FEE)  # the fee wallet's nonce, used elsewhere
    broadcaster = Broadcaster(gateway_ctx.db, {"ethereum": evm}, rebroadcast_seconds=30)
    assert not await broadcaster.send(topup.id)
    pending = await state_of(gateway_ctx, topup.id)
    assert pending.state == "broadcast"
    assert "already used by another transaction" in (pending.last_broadcast_error or "")
    assert pending.broadcast_attempts == 1  # not counted as a send
    assert await anvil.rpc("eth_getTransactionByHash", topup.tx_hash) is None

    await anvil.mine(80)  # finalized now (anvil: 64 blocks behind the head)
    assert not await broadcaster.send(topup.id)
    lost = await state_of(gateway_ctx, topup.id)
    assert lost.state == "replaced"
    assert "can never be mined" in (lost.failure_reason or "")
    assert (await state_of(gateway_ctx, bump.id)).state == "canceled"  # never signed
    # Its sweep can never be paid for: given up (signed, so watched until unminable).
    await broadcaster.fail_dependents()
    assert (await state_of(gateway_ctx, sweep.id)).state == "canceling"


async def test_no_bump_is_accepted_for_a_nonce_already_mined(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    batch_id = await signed_batch(gateway_ctx, evm_plan(), tmp_path)
    topup, _ = await transfers_of(gateway_ctx, batch_id)
    await mark_sent(gateway_ctx, topup.id)
    later = datetime.now(UTC) + timedelta(seconds=601)
    async with gateway_ctx.db.transaction() as session:
        [bump_batch] = await plan_stuck_replacements(
            session, stuck_seconds=600, native_symbols={}, now=later
        )
    [bump] = await transfers_of(gateway_ctx, bump_batch)
    request = documents.load_request(await issue(gateway_ctx, bump_batch))
    signed = documents.dump(signer(tmp_path).sign(request)).encode()
    # Meanwhile the original is mined (depth 1: nothing superseded yet).
    await deliver(gateway_ctx, fact(ChainTxMined, topup))
    assert (await state_of(gateway_ctx, bump.id)).state == "awaiting_signature"
    with pytest.raises(repository.SignedResponseRejected, match="already mined"):
        async with gateway_ctx.db.transaction() as session:
            await repository.accept_signed(session, signed, by="usr_late")
    # Confirmed: the bump still waiting for its nonce is ended.
    await deliver(gateway_ctx, fact(ChainTxConfirmed, topup))
    assert (await state_of(gateway_ctx, bump.id)).state == "canceled"


async def test_a_stuck_bump_of_a_nonce_already_mined_gets_no_bump_of_its_own(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    topup, _, bump = await bumped_topup(gateway_ctx, tmp_path)
    await deliver(gateway_ctx, fact(ChainTxMined, topup))  # the original won (depth 1)
    much_later = datetime.now(UTC) + timedelta(seconds=1300)
    async with gateway_ctx.db.transaction() as session:
        planned = await plan_stuck_replacements(
            session, stuck_seconds=600, native_symbols={}, now=much_later
        )
    assert planned == []
    assert (await state_of(gateway_ctx, bump.id)).state == "broadcast"


# -- finding 2: canceled after signing ------------------------------------------------------


async def test_a_tron_batch_canceled_after_signing_is_watched_until_it_expires(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    batch_id = await signed_batch(gateway_ctx, tron_plan(expires_in_ms=60_000), tmp_path)
    await cancel(gateway_ctx, batch_id)
    [transfer] = await transfers_of(gateway_ctx, batch_id)
    assert (transfer.state, transfer.signed_hex) == ("canceling", None)
    announced = (await events_of(gateway_ctx, transfer.id))[-1]["data"]
    assert (announced["state"], announced["tx_hash"]) == ("canceling", transfer.tx_hash)
    assert present_transfer(transfer)["state"] == "canceled"
    assert present_transfer(transfer)["canceling"] is True
    async with gateway_ctx.db.sessions() as session:
        # In flight: no new Tron round may be planned while these bytes can be mined.
        assert await repository.unfinished_batch(session, "tron") == batch_id
        assert repository.batch_status([transfer.state]) == "canceling"
    # Never sent by the broadcaster.
    broadcaster = Broadcaster(gateway_ctx.db, {"tron": object()}, rebroadcast_seconds=30)  # type: ignore[dict-item]
    assert await broadcaster._due(datetime.now(UTC) + timedelta(days=1)) == []

    expiration = transfer.expiration_ms or 0
    await deliver(gateway_ctx, not_found(transfer, expiration - 1_000))
    assert (await state_of(gateway_ctx, transfer.id)).state == "canceling"
    await deliver(gateway_ctx, not_found(transfer, expiration + 1_000))
    ended = await state_of(gateway_ctx, transfer.id)
    assert ended.state == "canceled"
    assert "expired unmined" in (ended.failure_reason or "")
    async with gateway_ctx.db.sessions() as session:
        assert await repository.unfinished_batch(session, "tron") is None


async def test_a_canceled_batch_mined_all_the_same_is_booked(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    batch_id = await signed_batch(gateway_ctx, tron_plan(), tmp_path)
    await cancel(gateway_ctx, batch_id)
    [transfer] = await transfers_of(gateway_ctx, batch_id)
    await deliver(gateway_ctx, fact(ChainTxMined, transfer))
    await deliver(gateway_ctx, fact(ChainTxConfirmed, transfer))
    booked = await state_of(gateway_ctx, transfer.id)
    assert (booked.state, booked.fee_paid_base_units) == ("confirmed", 13_000_000)
    assert "mined all the same" in (booked.failure_reason or "")
    assert (await events_of(gateway_ctx, transfer.id))[-1]["data"]["state"] == "confirmed"


async def test_an_evm_cancel_after_signing_ends_once_its_nonce_is_finalized_elsewhere(
    gateway_ctx: GatewayContext, isolated_anvil: AnvilChain, evm: EvmClient, tmp_path: Path
) -> None:
    anvil = isolated_anvil
    batch_id = await signed_evm_batch(gateway_ctx, anvil, tmp_path)
    await cancel(gateway_ctx, batch_id)
    topup, sweep = await transfers_of(gateway_ctx, batch_id)
    assert (topup.state, sweep.state) == ("canceling", "canceling")
    async with gateway_ctx.db.sessions() as session:
        # EVM: the nonce guards it; the next round takes the same nonce (not blocked).
        assert await repository.unfinished_batch(session, "ethereum") is None
    broadcaster = Broadcaster(gateway_ctx.db, {"ethereum": evm}, rebroadcast_seconds=30)
    assert await broadcaster.settle_canceling() == []
    await _spend_nonce(anvil, EVM_FEE)
    assert await broadcaster.settle_canceling() == []  # used, not finalized yet
    await anvil.mine(80)
    assert await broadcaster.settle_canceling() == [topup.id]
    assert (await state_of(gateway_ctx, topup.id)).state == "canceled"
    assert (await state_of(gateway_ctx, sweep.id)).state == "canceling"  # its nonce is free


# -- finding 5: a Tron expiry undone by a later mined fact ---------------------------------


async def test_a_tron_transfer_expired_then_found_mined_is_booked_and_its_redo_canceled(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    batch_id = await signed_batch(gateway_ctx, tron_plan(expires_in_ms=60_000), tmp_path)
    [transfer] = await transfers_of(gateway_ctx, batch_id)
    transfer = await mark_sent(gateway_ctx, transfer.id)
    await deliver(gateway_ctx, not_found(transfer, (transfer.expiration_ms or 0) + 1_000))
    assert (await state_of(gateway_ctx, transfer.id)).state == "failed"
    redo_plan = [dataclasses.replace(p, key="redo") for p in tron_plan()]
    redo_batch = await make_batch(gateway_ctx, redo_plan)  # the re-plan, not yet signed
    [redo] = await transfers_of(gateway_ctx, redo_batch)

    await deliver(gateway_ctx, fact(ChainTxMined, transfer))
    reopened = await state_of(gateway_ctx, transfer.id)
    assert (reopened.state, reopened.failure_reason) == ("broadcast", None)
    assert (await state_of(gateway_ctx, redo.id)).state == "canceled"
    await deliver(gateway_ctx, fact(ChainTxConfirmed, transfer))
    booked = await state_of(gateway_ctx, transfer.id)
    assert (booked.state, booked.receipt_status) == ("confirmed", "success")


async def test_a_tron_request_canceled_unsigned_ends_once_the_solidified_head_passes_it(
    gateway_ctx: GatewayContext, tron_chain: TronDevnet
) -> None:
    """Canceled while awaiting its signature: no hash to watch, but a signed copy may
    exist. It ends only when the solidified head (the devnet's solidity API) is past its
    expiration, judged by the broadcaster's Tron client."""
    batch_id = await make_batch(gateway_ctx, tron_plan(expires_in_ms=3_000))
    await issue(gateway_ctx, batch_id)
    await cancel(gateway_ctx, batch_id)
    [transfer] = await transfers_of(gateway_ctx, batch_id)
    assert (transfer.state, transfer.tx_hash) == ("canceling", None)
    client = TronClient(tron_chain.url, timeout_seconds=2)
    try:
        broadcaster = Broadcaster(gateway_ctx.db, {"tron": client}, rebroadcast_seconds=30)
        tron_chain.mine(1)
        assert await broadcaster.settle_canceling() == []  # may still be signed and mined
        await asyncio.sleep(3.2)
        tron_chain.mine(1)  # the head is past it; the solidified head not yet
        assert await broadcaster.settle_canceling() == []
        tron_chain.mine(25)
        assert await broadcaster.settle_canceling() == [transfer.id]
    finally:
        await client.close()
    ended = await state_of(gateway_ctx, transfer.id)
    assert ended.state == "canceled"
    assert "solidified head" in (ended.failure_reason or "")


async def test_a_transfer_that_lost_its_nonce_to_our_own_bump_leaves_the_bump_alone(
    gateway_ctx: GatewayContext, isolated_anvil: AnvilChain, evm: EvmClient, tmp_path: Path
) -> None:
    """The bump won (mined and finalized) before its facts arrived: the original is
    replaced, the bump, which the node knows, is left for its own facts to confirm."""
    anvil = isolated_anvil
    batch_id = await signed_evm_batch(gateway_ctx, anvil, tmp_path)
    topup, _ = await transfers_of(gateway_ctx, batch_id)
    await mark_sent(gateway_ctx, topup.id)
    later = datetime.now(UTC) + timedelta(seconds=601)
    async with gateway_ctx.db.transaction() as session:
        [bump_batch] = await plan_stuck_replacements(
            session, stuck_seconds=600, native_symbols={}, now=later
        )
    await sign_and_accept(gateway_ctx, bump_batch, tmp_path)
    [bump] = await transfers_of(gateway_ctx, bump_batch)
    bump = await mark_sent(gateway_ctx, bump.id)
    await evm.send_raw_transaction(bump.signed_hex or "")
    await anvil.receipt(bump.tx_hash or "")
    await anvil.mine(80)

    broadcaster = Broadcaster(gateway_ctx.db, {"ethereum": evm}, rebroadcast_seconds=30)
    assert not await broadcaster.send(topup.id)
    assert (await state_of(gateway_ctx, topup.id)).state == "replaced"
    assert (await state_of(gateway_ctx, bump.id)).state == "broadcast"
    assert await broadcaster.send(bump.id)  # its own "nonce too low": its hash is known
    assert (await state_of(gateway_ctx, bump.id)).last_broadcast_error is None


# -- review 2, finding 1: a reorg of a transfer mined from canceling -----------------------


@pytest.mark.parametrize("network", ["ethereum", "tron"])
async def test_a_canceled_transfer_mined_confirmed_then_reorged_goes_back_to_canceling(
    gateway_ctx: GatewayContext, tmp_path: Path, network: str
) -> None:
    """Canceled after signing (never broadcast by us), mined by whoever held the bytes,
    booked confirmed, then its block reorged out: no poison message, and it is watched
    again as `canceling` (never sent by us), the siblings it superseded reinstated."""
    batch_id = await signed_batch(
        gateway_ctx, evm_plan() if network == "ethereum" else tron_plan(), tmp_path
    )
    await cancel(gateway_ctx, batch_id)
    transfer = (await transfers_of(gateway_ctx, batch_id))[0]
    assert (transfer.state, transfer.first_broadcast_at) == ("canceling", None)
    await deliver(gateway_ctx, fact(ChainTxMined, transfer))
    await deliver(gateway_ctx, fact(ChainTxConfirmed, transfer))
    assert (await state_of(gateway_ctx, transfer.id)).state == "confirmed"

    await deliver(gateway_ctx, fact(ChainTxReorged, transfer))
    back = await state_of(gateway_ctx, transfer.id)
    assert (back.state, back.block_number, back.signed_hex) == ("canceling", None, None)
    assert "reorged out" in (back.failure_reason or "")
    assert (await events_of(gateway_ctx, transfer.id))[-1]["data"]["state"] == "canceling"
    # Booked again from canceling when it is mined anew.
    await deliver(gateway_ctx, fact(ChainTxConfirmed, transfer, block=101))
    assert (await state_of(gateway_ctx, transfer.id)).state == "confirmed"


# -- review 2, findings 6 and 7: late mined facts for transfers given up ------------------


async def test_a_late_confirmed_for_a_replaced_transfer_is_dropped_while_its_sibling_holds(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    """A stale `confirmed` from an orphaned block (redelivered, or from a slow replica)
    for a transfer replaced by its confirmed bump: never two confirmed at one nonce."""
    topup, _, bump = await bumped_topup(gateway_ctx, tmp_path)
    await deliver(gateway_ctx, fact(ChainTxConfirmed, bump, block=100))
    assert (await state_of(gateway_ctx, topup.id)).state == "replaced"
    await deliver(gateway_ctx, fact(ChainTxConfirmed, topup, block=99))
    after = await state_of(gateway_ctx, topup.id)
    assert (after.state, after.block_number) == ("replaced", None)
    assert (await state_of(gateway_ctx, bump.id)).state == "confirmed"


async def test_a_canceled_transfer_found_mined_goes_back_to_canceling_and_is_booked(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    batch_id = await signed_batch(gateway_ctx, tron_plan(expires_in_ms=60_000), tmp_path)
    await cancel(gateway_ctx, batch_id)
    [transfer] = await transfers_of(gateway_ctx, batch_id)
    await deliver(gateway_ctx, not_found(transfer, (transfer.expiration_ms or 0) + 1_000))
    assert (await state_of(gateway_ctx, transfer.id)).state == "canceled"
    counted = metrics.FOUND_MINED.labels("tron", "canceled")._value.get()

    await deliver(gateway_ctx, fact(ChainTxMined, transfer))
    found = await state_of(gateway_ctx, transfer.id)
    assert (found.state, found.block_number) == ("canceling", 100)
    assert metrics.FOUND_MINED.labels("tron", "canceled")._value.get() == counted + 1
    assert (await events_of(gateway_ctx, transfer.id))[-1]["data"]["state"] == "canceling"
    await deliver(gateway_ctx, fact(ChainTxConfirmed, transfer))
    booked = await state_of(gateway_ctx, transfer.id)
    assert (booked.state, booked.fee_paid_base_units) == ("confirmed", 13_000_000)
    assert "mined all the same" in (booked.failure_reason or "")


# -- review 2, finding 2: EVM nonce proofs at an explicit height, failing closed ----------


async def test_a_lost_nonce_is_final_at_the_networks_depth_not_the_finalized_tag(
    gateway_ctx: GatewayContext, isolated_anvil: AnvilChain, evm: EvmClient, tmp_path: Path
) -> None:
    """anvil's `finalized` is 64 blocks behind; with a final depth of 100 the used nonce
    is not final after 80 blocks (the tag would say it is), and is after 101."""
    anvil = isolated_anvil
    batch_id = await signed_evm_batch(gateway_ctx, anvil, tmp_path)
    topup, _ = await transfers_of(gateway_ctx, batch_id)
    await mark_sent(gateway_ctx, topup.id)
    await _spend_nonce(anvil, EVM_FEE)
    await anvil.mine(80)
    broadcaster = Broadcaster(
        gateway_ctx.db, {"ethereum": evm}, rebroadcast_seconds=30, final_depths={"ethereum": 100}
    )
    assert not await broadcaster.send(topup.id)
    pending = await state_of(gateway_ctx, topup.id)
    assert pending.state == "broadcast"
    assert "not final yet" in (pending.last_broadcast_error or "")
    await anvil.mine(21)
    assert not await broadcaster.send(topup.id)
    assert (await state_of(gateway_ctx, topup.id)).state == "replaced"


async def test_a_nonce_check_the_node_cannot_answer_sends_nothing(
    gateway_ctx: GatewayContext, anvil: AnvilChain, tmp_path: Path
) -> None:
    """Fail closed: a node that cannot answer the nonce check gets no send (its "nonce
    too low" would count as sent); the error is recorded, the transfer stays signed."""
    batch_id = await signed_evm_batch(gateway_ctx, anvil, tmp_path)
    topup, _ = await transfers_of(gateway_ctx, batch_id)
    dead = EvmClient("http://127.0.0.1:9", timeout_seconds=1)  # nothing listens there
    try:
        broadcaster = Broadcaster(gateway_ctx.db, {"ethereum": dead}, rebroadcast_seconds=30)
        assert not await broadcaster.send(topup.id)
    finally:
        await dead.close()
    after = await state_of(gateway_ctx, topup.id)
    assert (after.state, after.broadcast_attempts) == ("signed", 0)
    assert "nonce check failed, not sent" in (after.last_broadcast_error or "")


# -- review 2, finding 3: a hash-less canceling EVM transfer is not settled on no evidence -


async def test_an_evm_request_canceled_unsigned_whose_nonce_a_stranger_used_stays_canceling(
    gateway_ctx: GatewayContext, isolated_anvil: AnvilChain, evm: EvmClient
) -> None:
    """Canceled awaiting its signature (no hash): its nonce used by a transaction that
    is not ours (maybe the canceled request, signed and broadcast elsewhere) is no proof
    it was not mined. It stays canceling, counted for an operator; once one of OUR
    transfers is confirmed at that nonce, it is settled."""
    anvil = isolated_anvil
    nonce = int(await anvil.rpc("eth_getTransactionCount", EVM_FEE, "pending"), 16)
    batch_id = await make_batch(gateway_ctx, evm_plan(nonce=nonce))
    await issue(gateway_ctx, batch_id)
    await cancel(gateway_ctx, batch_id)
    topup, _ = await transfers_of(gateway_ctx, batch_id)
    assert (topup.state, topup.tx_hash, topup.nonce) == ("canceling", None, nonce)
    await anvil.rpc("anvil_setBalance", EVM_FEE, hex(10**19))
    await _spend_nonce(anvil, EVM_FEE)
    await anvil.mine(80)

    broadcaster = Broadcaster(gateway_ctx.db, {"ethereum": evm}, rebroadcast_seconds=30)
    assert await broadcaster.settle_canceling() == []
    kept = await state_of(gateway_ctx, topup.id)
    assert kept.state == "canceling"
    assert "not ours" in (kept.last_broadcast_error or "")
    assert metrics.CANCELING_UNEXPLAINED.labels("ethereum")._value.get() >= 1

    # One of ours confirmed at that nonce (its own end_nonce not run: an older replica).
    other = await make_batch(gateway_ctx, [dataclasses.replace(evm_plan(nonce=nonce)[0], key="o")])
    [ours] = await transfers_of(gateway_ctx, other)
    async with gateway_ctx.db.transaction() as session:
        await session.execute(
            update(OutgoingTransfer).where(OutgoingTransfer.id == ours.id).values(state="confirmed")
        )
    assert await broadcaster.settle_canceling() == [topup.id]
    settled = await state_of(gateway_ctx, topup.id)
    assert settled.state == "canceled"
    assert f"taken by {ours.id}" in (settled.failure_reason or "")


async def test_the_wired_broadcaster_knows_each_networks_final_depth(
    gateway_ctx: GatewayContext,
) -> None:
    """The watcher's default reorg window: max(2 x confirmations, 64) per network."""
    from stablegate_gateway.payments_wiring import build_broadcaster

    broadcaster = build_broadcaster(gateway_ctx)
    try:
        for name in gateway_ctx.registry.names():
            expected = max(2 * gateway_ctx.confirmations_for(name), 64)
            assert broadcaster.final_depths[name] == expected
    finally:
        await broadcaster.close()


# -- review 3: canceling reached without a batch cancel; hash-less canceling siblings -------


async def test_a_transfer_canceling_by_a_failed_dependency_mined_then_reorged_stays_canceling(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    """The batch was never canceled: its top-up failed, so the sweep went canceling (its
    signed bytes dropped). Mined by whoever held them, confirmed, then reorged out: back to
    canceling, never to `broadcast` (it would have no bytes to send: a stuck network)."""
    batch_id = await signed_batch(gateway_ctx, evm_plan(), tmp_path)
    _, sweep = await transfers_of(gateway_ctx, batch_id)
    async with gateway_ctx.db.transaction() as session:
        locked = await repository.lock_transfer(session, sweep.id)
        await repository.apply_event(
            session, locked, OutgoingEvent.DEPENDENCY_FAILED, failure_reason="top-up failed"
        )
    sweep = await state_of(gateway_ctx, sweep.id)
    assert (sweep.state, sweep.signed_hex) == ("canceling", None)
    await deliver(gateway_ctx, fact(ChainTxMined, sweep))
    await deliver(gateway_ctx, fact(ChainTxConfirmed, sweep))
    assert (await state_of(gateway_ctx, sweep.id)).state == "confirmed"

    await deliver(gateway_ctx, fact(ChainTxReorged, sweep))
    back = await state_of(gateway_ctx, sweep.id)
    assert (back.state, back.block_number) == ("canceling", None)


async def test_a_lost_nonce_leaves_a_hash_less_canceling_sibling_canceling(
    gateway_ctx: GatewayContext, isolated_anvil: AnvilChain, evm: EvmClient, tmp_path: Path
) -> None:
    """Round A was canceled awaiting its signature (no hash); round B reused A's nonce. A
    stranger's transaction took it: B can never be mined (replaced), but the stranger may
    be A signed out of band, so A stays canceling (unexplained), not canceled."""
    anvil = isolated_anvil
    nonce = int(await anvil.rpc("eth_getTransactionCount", EVM_FEE, "pending"), 16)
    first = await make_batch(gateway_ctx, evm_plan(nonce=nonce))
    await issue(gateway_ctx, first)
    await cancel(gateway_ctx, first)
    hashless, _ = await transfers_of(gateway_ctx, first)
    assert (hashless.state, hashless.tx_hash) == ("canceling", None)
    second = await signed_batch(gateway_ctx, evm_plan(nonce=nonce), tmp_path)
    topup, _ = await transfers_of(gateway_ctx, second)
    await anvil.rpc("anvil_setBalance", EVM_FEE, hex(10**19))
    await _spend_nonce(anvil, EVM_FEE)
    await anvil.mine(80)

    broadcaster = Broadcaster(gateway_ctx.db, {"ethereum": evm}, rebroadcast_seconds=30)
    assert await broadcaster.send(topup.id) is False
    assert (await state_of(gateway_ctx, topup.id)).state == "replaced"
    assert (await state_of(gateway_ctx, hashless.id)).state == "canceling"
