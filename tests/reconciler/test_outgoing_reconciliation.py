"""The minute reconciliation through a sweep, against a real chain (anvil), the real
PostgreSQL and the ledger's own consumer path: a sweep mined before its confirmation is
booked is pending, not a discrepancy; a sweep booked before the compared block shows it
is pending too; after the booking the ledger and the chain agree. Tokens gone without a
transfer in flight, gone by another amount, or in flight past the grace period still open
a discrepancy. A partial refund from a deposit address is reserved without a gap, pending
while mined and unbooked, and equal to the chain once settled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from stablegate_common.chains.evm import EvmClient
from stablegate_common.config import ConfigurationError, load_settings
from stablegate_common.core.assets import MAINNET, AssetRegistry
from stablegate_common.db import Database
from stablegate_common.events import Event
from stablegate_reconciler.reconciliation.jobs import ReconciliationJob
from stablegate_reconciler.reconciliation.models import Discrepancy
from stablegate_reconciler.settings import ReconcilerSettings
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.reconciler.factories import USDT, intent_event, next_update, outgoing_event, transfer
from tests.reconciler.support import account_balances, deliver, deliver_outgoing


@pytest.fixture
def registry(anvil: AnvilChain) -> AssetRegistry:
    return AssetRegistry.from_mapping(MAINNET).overlay(anvil.assets_overlay)


@pytest.fixture
async def reader(anvil: AnvilChain) -> AsyncIterator[EvmClient]:
    client = EvmClient(anvil.rpc_url)
    yield client
    await client.close()


@pytest.fixture
def job(ledger_db: Database, registry: AssetRegistry, reader: EvmClient) -> ReconciliationJob:
    return ReconciliationJob(ledger_db, registry, {"ethereum": reader})


async def bury(anvil: AnvilChain, registry: AssetRegistry) -> None:
    await anvil.mine(registry.network("ethereum").confirmations - 1)


async def paid_deposit(
    db: Database,
    anvil: AnvilChain,
    registry: AssetRegistry,
    amount: int,
    *,
    merchant_id: str = "mer_reconciled",
) -> str:
    """A deposit address anvil signs for, paid `amount` USDT and booked (an intent)."""
    deposit = await anvil.new_account()
    await anvil.transfer(anvil.usdt, deposit, amount)
    await bury(anvil, registry)
    paid = intent_event(
        transfers=[transfer(amount)],
        token_contract=anvil.usdt,
        deposit_address=deposit,
        amount_base_units=amount,
        merchant_id=merchant_id,
    )
    await deliver(db, paid)
    return deposit


async def send_sweep(anvil: AnvilChain, deposit: str, amount: int) -> int:
    """The sweep itself, on chain: `amount` from the deposit address to a treasury."""
    tx = await anvil.transfer(anvil.usdt, fresh_address(), amount, sender=deposit)
    return int((await anvil.receipt(tx))["blockNumber"], 16)


def broadcast(anvil: AnvilChain, deposit: str, amount: int) -> Event:
    return outgoing_event(
        sequence=4,
        state="broadcast",
        previous_state="signed",
        source_address=deposit,
        token_contract=anvil.usdt,
        amount_base_units=amount,
        block_number=None,
        block_hash=None,
        receipt_status=None,
        gas_used=None,
        fee_paid_base_units=None,
    )


def mined(previous: Event, block: int, sequence: int = 5) -> Event:
    return next_update(previous, sequence=sequence, block_number=block, gas_used=40_000)


def confirmed(previous: Event, block: int, sequence: int = 6) -> Event:
    return next_update(
        previous,
        sequence=sequence,
        state="confirmed",
        block_number=block,
        receipt_status="success",
        gas_used=40_000,
        fee_paid_base_units=40_000 * 10**9,
    )


async def discrepancies(db: Database) -> list[Discrepancy]:
    async with db.sessions() as session:
        return list(await session.scalars(select(Discrepancy)))


async def test_a_sweep_mined_before_its_confirmation_is_booked_is_pending_then_agrees(
    ledger_db: Database, anvil: AnvilChain, registry: AssetRegistry, job: ReconciliationJob
) -> None:
    deposit = await paid_deposit(ledger_db, anvil, registry, 25 * USDT)
    assert (await job.run()).tally.mismatches == 0

    sent = broadcast(anvil, deposit, 25 * USDT)
    await deliver_outgoing(ledger_db, sent, registry)
    block = await send_sweep(anvil, deposit, 25 * USDT)
    seen = mined(sent, block)
    await deliver_outgoing(ledger_db, seen, registry)
    await bury(anvil, registry)  # at the confirmed depth: the chain shows the deposit empty

    window = await job.run()

    assert (window.tally.checked, window.tally.mismatches, window.tally.pending) == (1, 0, 1)
    assert window.networks["ethereum"]["pending"] == 1
    assert await discrepancies(ledger_db) == []

    await deliver_outgoing(ledger_db, confirmed(seen, block), registry)
    after = await job.run()

    assert (after.tally.checked, after.tally.mismatches, after.tally.pending) == (1, 0, 0)
    assert await discrepancies(ledger_db) == []
    balances = await account_balances(ledger_db)
    assert balances[f"asset:ethereum:USDT:{deposit}"] == 0
    assert await anvil.balance_of(anvil.usdt, deposit) == 0


async def test_a_sweep_booked_before_the_compared_block_shows_it_is_pending(
    ledger_db: Database, anvil: AnvilChain, registry: AssetRegistry, job: ReconciliationJob
) -> None:
    deposit = await paid_deposit(ledger_db, anvil, registry, 9 * USDT)
    sent = broadcast(anvil, deposit, 9 * USDT)
    await deliver_outgoing(ledger_db, sent, registry)
    block = await send_sweep(anvil, deposit, 9 * USDT)
    # The gateway's node is ahead of the reconciler's view: confirmed and booked already.
    await deliver_outgoing(ledger_db, confirmed(sent, block, sequence=5), registry)

    early = await job.run()  # compares at a block before the sweep: 9 USDT still there

    assert (early.tally.mismatches, early.tally.pending) == (0, 1)
    await bury(anvil, registry)
    late = await job.run()
    assert (late.tally.mismatches, late.tally.pending) == (0, 0)
    assert await discrepancies(ledger_db) == []


async def test_tokens_gone_without_a_transfer_in_flight_open_a_discrepancy(
    ledger_db: Database, anvil: AnvilChain, registry: AssetRegistry, job: ReconciliationJob
) -> None:
    deposit = await paid_deposit(ledger_db, anvil, registry, 8 * USDT)
    await send_sweep(anvil, deposit, 8 * USDT)  # nobody told the ledger
    await bury(anvil, registry)

    result = await job.run()

    assert result.tally.opened == 1
    [found] = await discrepancies(ledger_db)
    assert (found.address, found.ledger_base_units, found.chain_base_units) == (
        deposit,
        8 * USDT,
        0,
    )


async def test_tokens_gone_by_another_amount_than_in_flight_open_a_discrepancy(
    ledger_db: Database, anvil: AnvilChain, registry: AssetRegistry, job: ReconciliationJob
) -> None:
    deposit = await paid_deposit(ledger_db, anvil, registry, 10 * USDT)
    sent = broadcast(anvil, deposit, 10 * USDT)
    await deliver_outgoing(ledger_db, sent, registry)
    block = await send_sweep(anvil, deposit, 4 * USDT)  # not what the plan said
    await deliver_outgoing(ledger_db, mined(sent, block), registry)
    await bury(anvil, registry)

    result = await job.run()

    assert (result.tally.opened, result.tally.pending) == (1, 0)


async def test_a_gap_in_flight_past_the_grace_period_opens_a_discrepancy(
    ledger_db: Database, anvil: AnvilChain, registry: AssetRegistry, reader: EvmClient
) -> None:
    deposit = await paid_deposit(ledger_db, anvil, registry, 6 * USDT)
    sent = broadcast(anvil, deposit, 6 * USDT)
    await deliver_outgoing(ledger_db, sent, registry)
    block = await send_sweep(anvil, deposit, 6 * USDT)
    await deliver_outgoing(ledger_db, mined(sent, block), registry)
    await bury(anvil, registry)
    await asyncio.sleep(0.2)
    impatient = ReconciliationJob(
        ledger_db, registry, {"ethereum": reader}, in_flight_grace_seconds=0.1
    )

    result = await impatient.run()

    assert (result.tally.opened, result.tally.pending) == (1, 0)


def test_the_grace_period_comes_from_the_environment_and_must_be_positive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECONCILER_IN_FLIGHT_GRACE_SECONDS", "120")
    assert load_settings(ReconcilerSettings, "reconciler").reconciler.in_flight_grace_seconds == 120

    monkeypatch.setenv("RECONCILER_IN_FLIGHT_GRACE_SECONDS", "0")
    with pytest.raises(ConfigurationError, match="RECONCILER_IN_FLIGHT_GRACE_SECONDS"):
        load_settings(ReconcilerSettings, "reconciler")


async def test_a_reorg_that_drops_a_booked_sweep_keeps_the_books_equal_to_the_chain(
    ledger_db: Database, isolated_anvil: AnvilChain, registry: AssetRegistry, reader: EvmClient
) -> None:
    anvil = isolated_anvil
    job = ReconciliationJob(ledger_db, registry, {"ethereum": reader})
    deposit = await paid_deposit(ledger_db, anvil, registry, 11 * USDT)
    sent = broadcast(anvil, deposit, 11 * USDT)
    await deliver_outgoing(ledger_db, sent, registry)
    block = await send_sweep(anvil, deposit, 11 * USDT)
    done = confirmed(mined(sent, block), block)
    await deliver_outgoing(ledger_db, done, registry)
    await bury(anvil, registry)
    assert (await job.run()).tally.mismatches == 0

    # The blocks from the sweep's on are replaced by blocks without it: the tokens are back.
    depth = await anvil.block_number() - block + 1
    await anvil.reorg(depth, [])
    await anvil.mine(1)
    assert await anvil.balance_of(anvil.usdt, deposit) == 11 * USDT
    reorged = next_update(
        done,
        sequence=7,
        state="broadcast",
        block_number=None,
        block_hash=None,
        receipt_status=None,
        gas_used=None,
        fee_paid_base_units=None,
    )
    await deliver_outgoing(ledger_db, reorged, registry)

    back = await job.run()

    assert (back.tally.mismatches, back.tally.pending) == (0, 0)
    assert (await account_balances(ledger_db))[f"asset:ethereum:USDT:{deposit}"] == 11 * USDT

    # Re-broadcast and mined again: pending until the confirmation is booked, then equal.
    again_block = await send_sweep(anvil, deposit, 11 * USDT)
    seen = mined(reorged, again_block, sequence=8)
    await deliver_outgoing(ledger_db, seen, registry)
    await bury(anvil, registry)
    assert (await job.run()).tally.pending == 1
    await deliver_outgoing(ledger_db, confirmed(seen, again_block, sequence=9), registry)
    final = await job.run()
    assert (final.tally.mismatches, final.tally.pending) == (0, 0)
    assert await discrepancies(ledger_db) == []
    assert (await account_balances(ledger_db))["treasury:ethereum:USDT"] == 11 * USDT


async def test_a_partial_refund_from_a_deposit_address_keeps_the_books_equal_to_the_chain(
    ledger_db: Database, anvil: AnvilChain, registry: AssetRegistry, job: ReconciliationJob
) -> None:
    deposit = await paid_deposit(ledger_db, anvil, registry, 15 * USDT, merchant_id="mer_refund")
    signed = next_update(
        broadcast(anvil, deposit, 6 * USDT),
        sequence=3,
        purpose="refund",
        state="signed",
        previous_state="awaiting_signature",
        reference="re_recon",
        merchant_id="mer_refund",
    )
    await deliver_outgoing(ledger_db, signed, registry)
    reserved = await job.run()  # reserved in the books; nothing left the address
    assert (reserved.tally.mismatches, reserved.tally.pending) == (0, 0)

    sent = next_update(signed, sequence=4, state="broadcast")
    await deliver_outgoing(ledger_db, sent, registry)
    block = await send_sweep(anvil, deposit, 6 * USDT)  # to the customer's address
    seen = mined(sent, block)
    await deliver_outgoing(ledger_db, seen, registry)
    await bury(anvil, registry)

    window = await job.run()
    assert (window.tally.mismatches, window.tally.pending) == (0, 1)

    await deliver_outgoing(ledger_db, confirmed(seen, block), registry)
    settled = await job.run()

    assert (settled.tally.checked, settled.tally.mismatches, settled.tally.pending) == (1, 0, 0)
    assert await discrepancies(ledger_db) == []
    balances = await account_balances(ledger_db)
    assert balances[f"asset:ethereum:USDT:{deposit}"] == 9 * USDT
    assert await anvil.balance_of(anvil.usdt, deposit) == 9 * USDT
    assert balances["reserved:merchant:mer_refund:ethereum:USDT"] == 0
    assert balances["liability:merchant:mer_refund:ethereum:USDT"] == -9 * USDT
