"""The shared watcher engine on Tron, against a Tron devnet of the test's own: payments
signed with tronpy are detected in base58, confirmed only once their block is solidified
(not by counting blocks), failed and look-alike TRC-20 transfers are never recorded, and
a fork below the head but above the solid block reverts what it removed."""

from __future__ import annotations

import pytest

from devnet.tron import TronDevnet
from stablegate_common.core.assets import Network
from stablegate_common.db import Database
from stablegate_common.watcher import WatcherEngine
from tests.fixtures.tron import fresh_tron_account
from tests.fixtures.tron_payments import block_of, funded_payer, pay_trc20
from tests.fixtures.tron_watcher import TronEngineFactory
from tests.fixtures.watcher import announce, queued_events, scan_to_head, transfer_rows

pytestmark = pytest.mark.asyncio(loop_scope="session")

TRANSFER_TYPES = ("transfer.detected", "transfer.confirmed", "transfer.reverted")


async def _history(db: Database) -> list[tuple[str, str, int]]:
    return [(e.type, e.subject, e.sequence) for e in await queued_events(db, *TRANSFER_TYPES)]


async def _watching(engine: WatcherEngine, db: Database, network: Network) -> str:
    """A fresh deposit address in the engine's watch set."""
    await engine.resume()
    deposit = fresh_tron_account().address
    await announce(db, network, [deposit])
    await scan_to_head(engine)
    return deposit


async def test_a_payment_is_confirmed_when_its_block_is_solidified(
    tron_chain: TronDevnet,
    make_tron_engine: TronEngineFactory,
    tron_watcher_db: Database,
    tron_network: Network,
) -> None:
    # Three blocks on top would confirm an EVM transfer; on Tron only the solid block does.
    engine = make_tron_engine(confirmations=3)
    deposit = await _watching(engine, tron_watcher_db, tron_network)
    payer = funded_payer(tron_chain, usdt=30_000_000)
    txid = await pay_trc20(tron_chain, payer, deposit, 25_000_000)
    [block] = tron_chain.mine()
    assert block_of(tron_chain, txid) == block
    await scan_to_head(engine)

    [detected] = await queued_events(tron_watcher_db, "transfer.detected")
    assert detected.subject == f"tron:{txid}:0"
    assert detected.data["token_contract"] == tron_chain.tokens["USDT"]
    assert detected.data["from_address"] == payer.address
    assert detected.data["to_address"] == deposit
    assert int(detected.data["amount_base_units"]) == 25_000_000
    assert detected.data["block_hash"] == tron_chain.block_id(block)

    tron_chain.mine(18)  # 19 blocks from the transfer's up: one short of solid
    await scan_to_head(engine)
    assert tron_chain.solid() == block - 1
    assert await queued_events(tron_watcher_db, "transfer.confirmed") == []

    tron_chain.mine()
    await scan_to_head(engine)
    [confirmed] = await queued_events(tron_watcher_db, "transfer.confirmed")
    assert confirmed.subject == detected.subject
    assert confirmed.data["confirmations"] == 20
    [row] = await transfer_rows(tron_watcher_db)
    assert (row.status, row.to_address, row.tx_hash) == ("confirmed", deposit, txid)


async def test_failed_and_look_alike_transfers_are_never_recorded(
    tron_chain: TronDevnet,
    make_tron_engine: TronEngineFactory,
    tron_watcher_db: Database,
    tron_network: Network,
) -> None:
    engine = make_tron_engine()
    deposit = await _watching(engine, tron_watcher_db, tron_network)
    # A reverted transfer whose receipt still lists its Transfer log, one that ran out of
    # energy, the look-alike "USDT", a zero-value "poisoning" transfer, and a real one.
    tron_chain.transfer(0, deposit, 5_000_000, fail="REVERT", keep_logs=True, mine=False)
    tron_chain.transfer(0, deposit, 5_000_000, fail="OUT_OF_ENERGY", mine=False)
    tron_chain.transfer(0, deposit, 5_000_000, token="LOOKALIKE", mine=False)
    zero = tron_chain.transfer(1, deposit, 0, mine=False)
    real = tron_chain.transfer(2, deposit, 1_000_000, mine=False)
    tron_chain.mine(20)
    await scan_to_head(engine)

    rows = await transfer_rows(tron_watcher_db)
    assert sorted((r.tx_hash, r.status, r.amount) for r in rows) == sorted(
        [(zero.txid, "ignored", 0), (real.txid, "confirmed", 1_000_000)]
    )
    history = await _history(tron_watcher_db)
    assert [(kind, subject.split(":")[1]) for kind, subject, _ in history] == [
        ("transfer.detected", real.txid),
        ("transfer.confirmed", real.txid),
    ]


async def test_a_fork_before_solidification_reverts_the_transfer(
    tron_chain: TronDevnet,
    make_tron_engine: TronEngineFactory,
    tron_watcher_db: Database,
    tron_network: Network,
) -> None:
    engine = make_tron_engine()
    deposit = await _watching(engine, tron_watcher_db, tron_network)
    sent = tron_chain.transfer(0, deposit, 3_000_000)
    tron_chain.mine()
    await scan_to_head(engine)
    subject = f"tron:{sent.txid}:0"
    assert await _history(tron_watcher_db) == [("transfer.detected", subject, 1)]

    # The transfer's block and the one above are replaced by two empty blocks.
    tron_chain.fork(2, "drop")
    await scan_to_head(engine)
    assert await _history(tron_watcher_db) == [
        ("transfer.detected", subject, 1),
        ("transfer.reverted", subject, 2),
    ]

    tron_chain.mine(25)  # the replacement blocks solidify without the transfer
    await scan_to_head(engine)
    [row] = await transfer_rows(tron_watcher_db)
    assert (row.status, row.sequence) == ("reverted", 2)
    assert len(await _history(tron_watcher_db)) == 2


async def test_a_transfer_re_included_by_a_fork_is_detected_again_and_confirmed_once(
    tron_chain: TronDevnet,
    make_tron_engine: TronEngineFactory,
    tron_watcher_db: Database,
    tron_network: Network,
) -> None:
    engine = make_tron_engine()
    deposit = await _watching(engine, tron_watcher_db, tron_network)
    sent = tron_chain.transfer(0, deposit, 4_000_000)
    old_block = tron_chain.block_id(sent.block or 0)
    await scan_to_head(engine)

    # Same height, new block id: the transfer is in a block the engine has not seen.
    tron_chain.fork(1, "keep")
    assert tron_chain.block_id(block_of(tron_chain, sent.txid)) != old_block
    await scan_to_head(engine)
    tron_chain.mine(20)
    await scan_to_head(engine)

    subject = f"tron:{sent.txid}:0"
    assert await _history(tron_watcher_db) == [
        ("transfer.detected", subject, 1),
        ("transfer.reverted", subject, 2),
        ("transfer.detected", subject, 3),
        ("transfer.confirmed", subject, 4),
    ]
    [row] = await transfer_rows(tron_watcher_db)
    assert row.block_hash == tron_chain.block_id(block_of(tron_chain, sent.txid))
