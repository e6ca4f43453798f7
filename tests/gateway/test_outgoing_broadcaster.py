"""The broadcaster and the chain.tx.* consumer on the real PostgreSQL and anvil, with a
signing round signed by the real signer in process: a crash between storing
BROADCAST_SENT and sending heals by re-sending the same bytes (mined once); a crash
after sending and before recording sends nothing twice; a sweep waits for its top-up's
confirmation; a revert records its gas; a dependency that failed cancels its dependents;
a reorg puts a confirmed transfer back to broadcast; a stuck EVM transfer gets a
replacement with the same nonce and +12.5 % fees, and the loser of the nonce race is
superseded; a Tron transfer not found past its expiration expires."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text

from stablegate_common.chains.evm import EvmClient
from stablegate_common.events import Event, make_event
from stablegate_common.events.contracts import (
    ChainTxConfirmed,
    ChainTxFields,
    ChainTxMined,
    ChainTxNotFound,
    ChainTxReorged,
)
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.outgoing import repository
from stablegate_gateway.outgoing.broadcaster import LOCK_KEY, Broadcaster
from stablegate_gateway.outgoing.consumers import (
    bumped,
    chain_tx_handler,
    plan_stuck_replacements,
)
from stablegate_gateway.outgoing.models import OutgoingTransfer
from stablegate_gateway.outgoing.states import OutgoingEvent
from stablegate_signer import documents
from tests.fixtures.anvil import AnvilChain
from tests.gateway.outgoing_support import (
    DEVNET_USDT,
    EVM_DEPOSIT,
    EVM_FEE,
    EVM_TREASURY,
    evm_plan,
    issue,
    make_batch,
    signer,
    transfers_of,
    tron_plan,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

LATER = timedelta(seconds=31)  # past GATEWAY_OUTGOING_REBROADCAST_SECONDS (30)


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs (not an Exception)."""


class Sender:
    """The real client, counting sends, crashing before the first when asked to."""

    def __init__(self, client: EvmClient, *, crash_first: bool = False) -> None:
        self.client = client
        self.crash_first = crash_first
        self.sent: list[str] = []

    async def send_raw_transaction(self, signed_hex: str) -> str:
        if self.crash_first:
            self.crash_first = False
            raise Crash
        self.sent.append(signed_hex)
        return await self.client.send_raw_transaction(signed_hex)


@pytest_asyncio.fixture(loop_scope="session")
async def evm(anvil: AnvilChain) -> AsyncIterator[EvmClient]:
    client = EvmClient(anvil.rpc_url, timeout_seconds=5)
    try:
        yield client
    finally:
        await client.close()


async def sign_and_accept(ctx: GatewayContext, batch_id: str, tmp_path: Path) -> None:
    request = documents.load_request(await issue(ctx, batch_id))
    signed = documents.dump(signer(tmp_path).sign(request)).encode()
    async with ctx.db.transaction() as session:
        await repository.accept_signed(session, signed, by="usr_test")


async def signed_evm_batch(ctx: GatewayContext, anvil: AnvilChain, tmp_path: Path) -> str:
    assert anvil.usdt.lower() == DEVNET_USDT.lower()
    await anvil.rpc("anvil_setBalance", EVM_FEE, hex(10**19))
    await anvil.mint(anvil.usdt, EVM_DEPOSIT, 25_000_000)
    nonce = int(await anvil.rpc("eth_getTransactionCount", EVM_FEE, "pending"), 16)
    deposit_nonce = int(await anvil.rpc("eth_getTransactionCount", EVM_DEPOSIT, "pending"), 16)
    plan = evm_plan(nonce=nonce)
    plan[1] = _with(plan[1], nonce=deposit_nonce)
    batch_id = await make_batch(ctx, plan)
    await sign_and_accept(ctx, batch_id, tmp_path)
    return batch_id


def _with(plan: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(plan, **changes)


async def state_of(ctx: GatewayContext, transfer_id: str) -> OutgoingTransfer:
    async with ctx.db.sessions() as session:
        found = await session.get(OutgoingTransfer, transfer_id)
        assert found is not None
        return found


async def deliver(ctx: GatewayContext, event: Event) -> None:
    async with ctx.db.transaction() as session:
        await chain_tx_handler()(session, event)


# The watcher numbers its events per hash, increasing; the tests number theirs from one
# counter (increasing per hash too), or give a sequence to replay an older one.
_SEQUENCE = itertools.count(1)


def chain_event(
    cls: type[ChainTxFields],
    receipt: dict[str, Any],
    block: dict[str, Any],
    *,
    sequence: int | None = None,
) -> Event:
    gas = int(receipt["gasUsed"], 16)
    price = int(receipt["effectiveGasPrice"], 16)
    payload = cls(
        network="ethereum",
        tx_hash=receipt["transactionHash"],
        block_number=int(receipt["blockNumber"], 16),
        block_hash=receipt["blockHash"],
        block_timestamp=datetime.fromtimestamp(int(block["timestamp"], 16), tz=UTC),
        success=receipt["status"] == "0x1",
        gas_used=gas,
        effective_gas_price=price,
        energy_used=None,
        bandwidth_used=None,
        fee_paid_base_units=gas * price,
        confirmations=3,
        confirmations_required=3,
    )
    return make_event(
        payload,
        producer="test",
        subject=receipt["transactionHash"],
        sequence=next(_SEQUENCE) if sequence is None else sequence,
    )


async def confirm(ctx: GatewayContext, anvil: AnvilChain, tx_hash: str) -> dict[str, Any]:
    receipt = await anvil.receipt(tx_hash)
    block = await anvil.rpc("eth_getBlockByHash", receipt["blockHash"], False)
    await deliver(ctx, chain_event(ChainTxMined, receipt, block))
    await deliver(ctx, chain_event(ChainTxConfirmed, receipt, block))
    return receipt


async def test_a_crash_before_the_send_heals_by_resending_the_same_bytes_and_orders_deps(
    gateway_ctx: GatewayContext, isolated_anvil: AnvilChain, evm: EvmClient, tmp_path: Path
) -> None:
    anvil = isolated_anvil
    batch_id = await signed_evm_batch(gateway_ctx, anvil, tmp_path)
    topup, sweep = await transfers_of(gateway_ctx, batch_id)
    treasury_before = await anvil.balance_of(anvil.usdt, EVM_TREASURY)
    deposit_before = await anvil.balance_of(anvil.usdt, EVM_DEPOSIT)
    sender = Sender(evm, crash_first=True)
    broadcaster = Broadcaster(gateway_ctx.db, {"ethereum": sender}, rebroadcast_seconds=30)

    with pytest.raises(Crash):
        await broadcaster.round()
    stored = await state_of(gateway_ctx, topup.id)
    assert (stored.state, stored.broadcast_attempts) == ("broadcast", 1)
    assert await anvil.rpc("eth_getTransactionByHash", topup.tx_hash) is None  # never sent
    assert (await state_of(gateway_ctx, sweep.id)).state == "signed"  # waits for its top-up

    assert await broadcaster.round() == 0  # not due again yet
    assert await broadcaster.round(now=datetime.now(UTC) + LATER) == 1
    assert sender.sent == [topup.signed_hex]
    receipt = await anvil.receipt(topup.tx_hash or "")
    assert receipt["status"] == "0x1"
    assert (await state_of(gateway_ctx, sweep.id)).state == "signed"
    assert await broadcaster.round() == 0  # mined is not confirmed: the sweep still waits

    await confirm(gateway_ctx, anvil, topup.tx_hash or "")
    confirmed = await state_of(gateway_ctx, topup.id)
    assert confirmed.state == "confirmed"
    assert confirmed.gas_used == 21_000
    assert confirmed.fee_paid_base_units == 21_000 * int(receipt["effectiveGasPrice"], 16)

    assert await broadcaster.round() == 1
    assert sender.sent == [topup.signed_hex, sweep.signed_hex]
    await anvil.receipt(sweep.tx_hash or "")
    await confirm(gateway_ctx, anvil, sweep.tx_hash or "")
    assert (await state_of(gateway_ctx, sweep.id)).state == "confirmed"
    moved = sweep.amount_base_units
    assert await anvil.balance_of(anvil.usdt, EVM_TREASURY) == treasury_before + moved
    assert await anvil.balance_of(anvil.usdt, EVM_DEPOSIT) == deposit_before - moved
    # One transaction each: the fee wallet's and the deposit's nonces moved by one.
    assert (
        int(await anvil.rpc("eth_getTransactionCount", EVM_FEE, "latest"), 16)
        == (topup.nonce or 0) + 1
    )


async def test_a_crash_after_the_send_sends_nothing_twice(
    gateway_ctx: GatewayContext, isolated_anvil: AnvilChain, evm: EvmClient, tmp_path: Path
) -> None:
    anvil = isolated_anvil
    batch_id = await signed_evm_batch(gateway_ctx, anvil, tmp_path)
    topup, _ = await transfers_of(gateway_ctx, batch_id)
    sender = Sender(evm)
    broadcaster = Broadcaster(gateway_ctx.db, {"ethereum": sender}, rebroadcast_seconds=30)
    record = broadcaster._record

    async def crash_on_record(transfer_id: str, error: str | None) -> None:
        raise Crash

    broadcaster._record = crash_on_record  # type: ignore[method-assign]
    with pytest.raises(Crash):
        await broadcaster.round()
    broadcaster._record = record  # type: ignore[method-assign]
    await anvil.receipt(topup.tx_hash or "")
    nonce_after = int(await anvil.rpc("eth_getTransactionCount", EVM_FEE, "latest"), 16)

    # The next round re-sends the same bytes (it cannot know they went out): the node
    # answers "nonce too low" / "already known", which is sent, not an error.
    assert await broadcaster.round(now=datetime.now(UTC) + LATER) == 1
    assert sender.sent == [topup.signed_hex, topup.signed_hex]
    stored = await state_of(gateway_ctx, topup.id)
    assert (stored.broadcast_attempts, stored.last_broadcast_error) == (2, None)
    await anvil.mine(1)
    assert int(await anvil.rpc("eth_getTransactionCount", EVM_FEE, "latest"), 16) == nonce_after


async def test_a_reverted_transfer_records_its_gas_and_fails_its_dependents(
    gateway_ctx: GatewayContext, isolated_anvil: AnvilChain, evm: EvmClient, tmp_path: Path
) -> None:
    anvil = isolated_anvil
    batch_id = await signed_evm_batch(gateway_ctx, anvil, tmp_path)
    topup, sweep = await transfers_of(gateway_ctx, batch_id)
    broadcaster = Broadcaster(gateway_ctx.db, {"ethereum": evm}, rebroadcast_seconds=30)
    await broadcaster.round()
    receipt = dict(await anvil.receipt(topup.tx_hash or ""))
    receipt["status"] = "0x0"  # as if it had reverted: the gas is spent all the same
    block = await anvil.rpc("eth_getBlockByHash", receipt["blockHash"], False)
    await deliver(gateway_ctx, chain_event(ChainTxConfirmed, receipt, block))
    failed = await state_of(gateway_ctx, topup.id)
    assert (failed.state, failed.receipt_status) == ("failed", "reverted")
    assert failed.gas_used == 21_000
    assert failed.fee_paid_base_units == 21_000 * int(receipt["effectiveGasPrice"], 16)

    await broadcaster.round()
    canceled = await state_of(gateway_ctx, sweep.id)
    # Signed: never sent by us, but its bytes exist: watched until it cannot be mined.
    assert canceled.state == "canceling"
    assert canceled.broadcast_attempts == 0
    assert canceled.signed_hex is None

    # A reorg drops the block that held it: back to broadcast, mined facts forgotten.
    await deliver(gateway_ctx, chain_event(ChainTxReorged, receipt, block))
    back = await state_of(gateway_ctx, topup.id)
    assert (back.state, back.block_number, back.gas_used) == ("broadcast", None, None)


async def test_a_stuck_transfer_gets_a_fee_bump_and_the_loser_is_superseded(
    gateway_ctx: GatewayContext, isolated_anvil: AnvilChain, evm: EvmClient, tmp_path: Path
) -> None:
    anvil = isolated_anvil
    batch_id = await signed_evm_batch(gateway_ctx, anvil, tmp_path)
    topup, _ = await transfers_of(gateway_ctx, batch_id)
    await anvil.set_automine(False)
    await Broadcaster(gateway_ctx.db, {"ethereum": evm}, rebroadcast_seconds=30).round()
    async with gateway_ctx.db.transaction() as session:
        assert await plan_stuck_replacements(session, stuck_seconds=600, native_symbols={}) == []
        later = datetime.now(UTC) + timedelta(seconds=601)
        [replacement_batch] = await plan_stuck_replacements(
            session, stuck_seconds=600, native_symbols={"ethereum": "ETH"}, now=later
        )
    async with gateway_ctx.db.transaction() as session:
        again = await plan_stuck_replacements(
            session, stuck_seconds=600, native_symbols={}, now=later
        )
    assert again == []  # planned once
    [bump] = await transfers_of(gateway_ctx, replacement_batch)
    assert (bump.replaces, bump.nonce, bump.source_address) == (
        topup.id,
        topup.nonce,
        topup.source_address,
    )
    assert bump.max_fee_per_gas == bumped(topup.max_fee_per_gas)
    assert bump.max_fee_per_gas == (topup.max_fee_per_gas or 0) * 9 // 8
    assert bump.max_priority_fee_per_gas == (topup.max_priority_fee_per_gas or 0) * 9 // 8
    assert (bump.amount_base_units, bump.destination_address) == (
        topup.amount_base_units,
        topup.destination_address,
    )

    # Signed and sent, the bump takes the original's place in the pool and is mined: the
    # original loses the nonce race.
    await sign_and_accept(gateway_ctx, replacement_batch, tmp_path)
    await Broadcaster(gateway_ctx.db, {"ethereum": evm}, rebroadcast_seconds=30).round()
    await anvil.mine(1)
    await anvil.set_automine(True)
    bump = await state_of(gateway_ctx, bump.id)
    await confirm(gateway_ctx, anvil, bump.tx_hash or "")
    assert (await state_of(gateway_ctx, bump.id)).state == "confirmed"
    loser = await state_of(gateway_ctx, topup.id)
    assert loser.state == "replaced"
    assert await anvil.rpc("eth_getTransactionReceipt", topup.tx_hash) is None


async def test_a_tron_transfer_not_found_past_its_expiration_expires(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    batch_id = await make_batch(gateway_ctx, tron_plan(expires_in_ms=60_000))
    await sign_and_accept(gateway_ctx, batch_id, tmp_path)
    [transfer] = await transfers_of(gateway_ctx, batch_id)
    async with gateway_ctx.db.transaction() as session:
        locked = await repository.lock_transfer(session, transfer.id)
        await repository.apply_event(session, locked, OutgoingEvent.BROADCAST_SENT)

    def not_found(at_ms: int) -> Event:
        payload = ChainTxNotFound(
            network="tron",
            tx_hash=transfer.tx_hash or "",
            checked_at=datetime.now(UTC),
            head_block=100,
            head_timestamp=datetime.fromtimestamp(at_ms / 1000, tz=UTC),
        )
        return make_event(payload, producer="test", subject="tron:x", sequence=at_ms)

    expiration = transfer.expiration_ms or 0
    await deliver(gateway_ctx, not_found(expiration - 1_000))
    assert (await state_of(gateway_ctx, transfer.id)).state == "broadcast"
    await deliver(gateway_ctx, not_found(expiration + 1_000))
    expired = await state_of(gateway_ctx, transfer.id)
    assert expired.state == "failed"
    assert "expired" in (expired.failure_reason or "")


async def test_the_round_lock_is_per_schema(gateway_ctx: GatewayContext) -> None:
    """One broadcaster per gateway: a round held in another schema (another gateway on the
    same database, or a parallel test) does not make this one skip."""
    broadcaster = Broadcaster(gateway_ctx.db, {}, rebroadcast_seconds=30)
    own = LOCK_KEY.format(schema=gateway_ctx.db.schema)
    for key, expected in ((LOCK_KEY.format(schema="another_gateway"), 0), (own, None)):
        async with gateway_ctx.db.sessions() as holder, holder.begin():
            await holder.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})
            assert await broadcaster.round() == expected
