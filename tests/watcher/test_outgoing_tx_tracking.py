"""The watchers follow the gateway's outgoing transactions by hash (txtrack.py): on anvil
mined → confirmed (→ final), a reverted one with the gas it burned, a reorg that drops
one and the same bytes mined again, and a hash nobody knows (not_found, rate limited);
on the Tron devnet mined → confirmed by the solidified chain, and not_found. `decide()`
is held to a table and to properties."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from tronpy.keys import PrivateKey

from devnet.tron import TronDevnet
from stablegate_common.chains import BroadcastRejected
from stablegate_common.chains.evm import EvmClient
from stablegate_common.chains.tron import TronClient
from stablegate_common.db import Database
from stablegate_common.events import Event, make_event
from stablegate_common.events.contracts import OutgoingTransferUpdated
from stablegate_common.watcher.models import TrackedTransaction
from stablegate_common.watcher.txtrack import (
    Decision,
    OutgoingTxTracker,
    Seen,
    TrackedTxConsumer,
    TrackerConfig,
    TrackStatus,
    decide,
)
from stablegate_signer.tron_proto import encode_signed
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.hostile_rpc import hostile_providers
from tests.fixtures.tron import fresh_tron_account
from tests.fixtures.watcher import queued_events

asyncio = pytest.mark.asyncio(loop_scope="session")

TX_TYPES = ("chain.tx.mined", "chain.tx.confirmed", "chain.tx.reorged", "chain.tx.not_found")
DEPTH = 3
WINDOW = 6


def updated(
    network: str,
    tx_hash: str,
    state: str,
    *,
    sequence: int,
    transfer_id: str = "ot_test",
    previous: str | None = None,
) -> Event:
    payload = OutgoingTransferUpdated(
        transfer_id=transfer_id,
        batch_id="ob_test",
        purpose="sweep",
        state=state,  # type: ignore[arg-type]
        previous_state=previous,  # type: ignore[arg-type]
        network=network,
        source_address="0x" + "11" * 20,
        destination_address="0x" + "22" * 20,
        asset="USDT",
        token_contract="0x" + "33" * 20,
        decimals=6,
        amount_base_units=1_000_000,
        reference=None,
        tx_hash=tx_hash,
        block_number=None,
        block_hash=None,
        receipt_status=None,
        gas_used=None,
        energy_used=None,
        bandwidth_used=None,
        fee_paid_base_units=None,
        failure_reason=None,
    )
    return make_event(payload, producer="gateway", subject=transfer_id, sequence=sequence)


async def deliver(db: Database, network: str, event: Event) -> None:
    async with db.transaction() as session:
        await TrackedTxConsumer(network).handle(session, event)


async def tracked(db: Database) -> list[TrackedTransaction]:
    async with db.sessions() as session:
        return list(await session.scalars(select(TrackedTransaction)))


async def history(db: Database) -> list[tuple[str, int]]:
    return [
        (e.type.removeprefix("chain.tx."), e.sequence) for e in await queued_events(db, *TX_TYPES)
    ]


@pytest_asyncio.fixture(loop_scope="session")
async def evm_tracker(anvil: AnvilChain, watcher_db: Database) -> AsyncIterator[OutgoingTxTracker]:
    client = EvmClient(anvil.rpc_url, timeout_seconds=5)
    try:
        yield OutgoingTxTracker(
            watcher_db,
            client,
            "ethereum",
            TrackerConfig(confirmations=DEPTH, reorg_window=WINDOW),
            producer="chain-watcher-eth",
        )
    finally:
        await client.close()


# -- the pure decision ---------------------------------------------------------------------

H1, H2 = "0xaa", "0xbb"
SHALLOW = Seen(10, H1, deep=False, final=False)
DEEP = Seen(10, H1, deep=True, final=False)
FINAL = Seen(10, H1, deep=True, final=True)
ELSEWHERE = Seen(11, H2, deep=False, final=False)

TABLE: list[tuple[TrackStatus, str | None, Seen | None, bool, Decision]] = [
    ("tracking", None, None, False, Decision("tracking", ())),
    ("tracking", None, None, True, Decision("tracking", ("not_found",))),
    ("tracking", None, SHALLOW, False, Decision("mined", ("mined",))),
    ("tracking", None, DEEP, False, Decision("confirmed", ("mined", "confirmed"))),
    ("tracking", None, FINAL, False, Decision("final", ("mined", "confirmed"))),
    ("mined", H1, SHALLOW, False, Decision("mined", ())),
    ("mined", H1, DEEP, False, Decision("confirmed", ("confirmed",))),
    ("mined", H1, FINAL, False, Decision("final", ("confirmed",))),
    ("mined", H1, None, False, Decision("tracking", ("reorged",))),
    ("mined", H1, None, True, Decision("tracking", ("reorged",))),
    ("mined", H1, ELSEWHERE, False, Decision("mined", ("reorged", "mined"))),
    ("confirmed", H1, DEEP, False, Decision("confirmed", ())),
    ("confirmed", H1, FINAL, False, Decision("final", ())),
    ("confirmed", H1, None, False, Decision("tracking", ("reorged",))),
    ("confirmed", H1, ELSEWHERE, False, Decision("mined", ("reorged", "mined"))),
    ("final", H1, None, False, Decision("final", ())),
    ("stopped", None, SHALLOW, False, Decision("stopped", ())),
]


@pytest.mark.parametrize(("status", "block_hash", "seen", "unknown", "expected"), TABLE)
def test_decide_table(
    status: TrackStatus,
    block_hash: str | None,
    seen: Seen | None,
    unknown: bool,
    expected: Decision,
) -> None:
    assert decide(status, block_hash, seen, unknown_to_node=unknown) == expected


seens = st.one_of(
    st.none(),
    st.builds(
        Seen,
        st.integers(0, 5),
        st.sampled_from([H1, H2]),
        st.booleans(),
        st.booleans(),
    ).filter(lambda s: s.deep or not s.final),
)


@given(
    status=st.sampled_from(["tracking", "mined", "confirmed"]),
    stored=st.sampled_from([H1, H2]),
    seen=seens,
    unknown=st.booleans(),
)
def test_decide_properties(
    status: TrackStatus, stored: str, seen: Seen | None, unknown: bool
) -> None:
    block_hash = None if status == "tracking" else stored
    d = decide(status, block_hash, seen, unknown_to_node=unknown)
    # A reorg is announced exactly when a block was held and is no longer the one seen.
    held = block_hash is not None
    assert ("reorged" in d.emit) == (held and (seen is None or seen.block_hash != block_hash))
    # Nothing in a block is ever "not found"; not_found only from a plain tracking row.
    assert "not_found" not in d.emit or (seen is None and status == "tracking")
    # Confirmed at most once per block, and only when deep.
    assert d.emit.count("confirmed") <= 1
    assert "confirmed" not in d.emit or (seen is not None and seen.deep)
    if seen is None:
        assert d.status == "tracking"
    else:
        assert d.status in ("mined", "confirmed", "final")
        # Deep is never left at mined; shallow is mined unless confirmed there already.
        assert not (seen.deep and d.status == "mined")
        assert seen.deep or d.status == "mined" or status == "confirmed"


# -- anvil ---------------------------------------------------------------------------------


@asyncio
async def test_a_token_transfer_is_mined_then_confirmed_then_final(
    isolated_anvil: AnvilChain, watcher_db: Database, evm_tracker: OutgoingTxTracker
) -> None:
    anvil = isolated_anvil
    await anvil.set_automine(False)
    request = anvil.call_request(
        anvil.accounts[1], anvil.usdt, "transfer(address,uint256)", fresh_address(), 5_000_000
    )
    tx_hash = await anvil.rpc("eth_sendTransaction", request)
    await deliver(watcher_db, "ethereum", updated("ethereum", tx_hash, "broadcast", sequence=3))
    assert await evm_tracker.tick() == 0  # pooled, known to the node: nothing to say yet
    await anvil.mine(1)
    assert await evm_tracker.tick() == 1
    receipt = await anvil.rpc("eth_getTransactionReceipt", tx_hash)
    [mined] = await queued_events(watcher_db, "chain.tx.mined")
    assert (mined.subject, mined.sequence) == (f"ethereum:{tx_hash}", 1)
    assert mined.data["block_number"] == int(receipt["blockNumber"], 16)
    assert mined.data["block_hash"] == receipt["blockHash"]
    assert mined.data["success"] is True
    assert mined.data["gas_used"] == int(receipt["gasUsed"], 16)
    assert int(mined.data["fee_paid_base_units"]) == int(receipt["gasUsed"], 16) * int(
        receipt["effectiveGasPrice"], 16
    )
    assert mined.data["confirmations"] == 1

    await anvil.mine(DEPTH - 1)
    assert await evm_tracker.tick() == 1
    [confirmed] = await queued_events(watcher_db, "chain.tx.confirmed")
    assert (confirmed.sequence, confirmed.data["confirmations"]) == (2, DEPTH)
    [row] = await tracked(watcher_db)
    assert row.status == "confirmed"

    await anvil.mine(WINDOW)
    assert await evm_tracker.tick() == 0
    [row] = await tracked(watcher_db)
    assert row.status == "final"
    assert await history(watcher_db) == [("mined", 1), ("confirmed", 2)]


@asyncio
async def test_a_reverted_transfer_is_confirmed_as_failed_with_its_gas(
    isolated_anvil: AnvilChain, watcher_db: Database, evm_tracker: OutgoingTxTracker
) -> None:
    anvil = isolated_anvil
    poor = await anvil.new_account()
    request = anvil.call_request(
        poor, anvil.usdt, "transfer(address,uint256)", fresh_address(), 10**30
    )
    tx_hash = await anvil.send({**request, "gas": hex(100_000)})
    await deliver(watcher_db, "ethereum", updated("ethereum", tx_hash, "broadcast", sequence=2))
    await anvil.mine(DEPTH)
    assert await evm_tracker.tick() == 2
    receipt = await anvil.rpc("eth_getTransactionReceipt", tx_hash)
    assert receipt["status"] == "0x0"
    mined, confirmed = await queued_events(watcher_db, *TX_TYPES)
    assert (mined.type, confirmed.type) == ("chain.tx.mined", "chain.tx.confirmed")
    assert confirmed.data["success"] is False
    assert confirmed.data["gas_used"] == int(receipt["gasUsed"], 16) > 21_000
    assert int(confirmed.data["fee_paid_base_units"]) > 0


@asyncio
async def test_a_reorg_drops_it_and_the_same_bytes_are_mined_again(
    isolated_anvil: AnvilChain, watcher_db: Database, evm_tracker: OutgoingTxTracker
) -> None:
    anvil = isolated_anvil
    tx_hash = await anvil.transfer(anvil.usdt, fresh_address(), 1_000_000)
    raw = await anvil.rpc("eth_getRawTransactionByHash", tx_hash)
    first_block = int((await anvil.receipt(tx_hash))["blockNumber"], 16)
    await deliver(watcher_db, "ethereum", updated("ethereum", tx_hash, "broadcast", sequence=2))
    await anvil.mine(DEPTH - 1)
    assert await evm_tracker.tick() == 2  # mined and confirmed at once
    [row] = await tracked(watcher_db)
    assert (row.status, row.block_number) == ("confirmed", first_block)

    await anvil.reorg(DEPTH, [])  # the transaction's block and those above it are replaced
    assert await evm_tracker.tick() == 1
    [reorged] = await queued_events(watcher_db, "chain.tx.reorged")
    assert reorged.sequence == 3
    assert (reorged.data["block_number"], reorged.data["confirmations"]) == (first_block, 0)
    [row] = await tracked(watcher_db)
    assert (row.status, row.block_number) == ("tracking", None)

    # The gateway follows (reorged_out → broadcast) and re-sends the same bytes.
    await deliver(watcher_db, "ethereum", updated("ethereum", tx_hash, "broadcast", sequence=5))
    assert await anvil.rpc("eth_sendRawTransaction", raw) == tx_hash
    await anvil.receipt(tx_hash)
    assert await evm_tracker.tick() == 1
    await anvil.mine(DEPTH)
    assert await evm_tracker.tick() == 1
    assert await history(watcher_db) == [
        ("mined", 1),
        ("confirmed", 2),
        ("reorged", 3),
        ("mined", 4),
        ("confirmed", 5),
    ]
    mined_again = (await queued_events(watcher_db, "chain.tx.mined"))[-1]
    assert (
        mined_again.data["block_hash"]
        == (await anvil.rpc("eth_getTransactionReceipt", tx_hash))["blockHash"]
    )


@asyncio
async def test_a_lagging_replica_is_no_reorg(
    isolated_anvil: AnvilChain, watcher_db: Database, evm_tracker: OutgoingTxTracker
) -> None:
    """A provider whose head is below the transaction's block (a load-balanced replica
    behind the one that served the receipt) cannot have dropped it: nothing changes."""
    anvil = isolated_anvil
    tx_hash = await anvil.transfer(anvil.usdt, fresh_address(), 1_000_000)
    await deliver(watcher_db, "ethereum", updated("ethereum", tx_hash, "broadcast", sequence=2))
    await anvil.mine(DEPTH - 1)
    assert await evm_tracker.tick() == 2  # mined and confirmed
    async with hostile_providers([anvil.rpc_url]) as [replica]:
        replica.lag = DEPTH + 2  # its head is below the block that holds the transaction
        client = EvmClient(replica.url, timeout_seconds=5)
        lagging = OutgoingTxTracker(
            watcher_db,
            client,
            "ethereum",
            TrackerConfig(confirmations=DEPTH, reorg_window=WINDOW),
            producer="chain-watcher-eth",
        )
        try:
            assert await lagging.tick() == 0
        finally:
            await client.close()
    [row] = await tracked(watcher_db)
    assert row.status == "confirmed"
    assert await history(watcher_db) == [("mined", 1), ("confirmed", 2)]


@asyncio
async def test_an_unknown_hash_is_not_found_at_most_once_per_interval_until_stopped(
    watcher_db: Database, evm_tracker: OutgoingTxTracker, anvil: AnvilChain
) -> None:
    tx_hash = "0x" + secrets.token_hex(32)
    await deliver(watcher_db, "ethereum", updated("ethereum", tx_hash, "broadcast", sequence=2))
    now = datetime.now(UTC)
    assert await evm_tracker.tick(now=now) == 1
    [event] = await queued_events(watcher_db, "chain.tx.not_found")
    assert event.data["tx_hash"] == tx_hash
    assert event.data["head_block"] == await anvil.block_number()
    assert await evm_tracker.tick(now=now + timedelta(seconds=30)) == 0
    assert await evm_tracker.tick(now=now + timedelta(seconds=61)) == 1

    # An older announcement changes nothing; the replacement's stops the tracking.
    await deliver(watcher_db, "ethereum", updated("ethereum", tx_hash, "replaced", sequence=1))
    [row] = await tracked(watcher_db)
    assert row.status == "tracking"
    await deliver(watcher_db, "ethereum", updated("ethereum", tx_hash, "replaced", sequence=4))
    [row] = await tracked(watcher_db)
    assert row.status == "stopped"
    assert await evm_tracker.tick(now=now + timedelta(seconds=200)) == 0


@asyncio
async def test_announcements_of_other_networks_and_states_are_ignored(
    watcher_db: Database,
) -> None:
    tx_hash = "0x" + secrets.token_hex(32)
    await deliver(watcher_db, "ethereum", updated("bsc", tx_hash, "broadcast", sequence=2))
    await deliver(watcher_db, "ethereum", updated("ethereum", tx_hash, "signed", sequence=2))
    assert await tracked(watcher_db) == []
    await deliver(watcher_db, "ethereum", updated("ethereum", tx_hash, "broadcast", sequence=3))
    await deliver(watcher_db, "ethereum", updated("ethereum", tx_hash, "broadcast", sequence=4))
    [row] = await tracked(watcher_db)
    assert (row.status, row.gateway_sequence, row.transfer_id) == ("tracking", 4, "ot_test")


@asyncio
async def test_a_transfer_canceled_after_signing_is_tracked(watcher_db: Database) -> None:
    """`canceling`: the gateway never sends it, but the signed bytes may be mined by
    whoever holds them: watched like a broadcast one (and again after a stop)."""
    tx_hash = "0x" + secrets.token_hex(32)
    await deliver(watcher_db, "ethereum", updated("ethereum", tx_hash, "canceling", sequence=3))
    [row] = await tracked(watcher_db)
    assert (row.status, row.gateway_sequence) == ("tracking", 3)
    await deliver(watcher_db, "ethereum", updated("ethereum", tx_hash, "canceled", sequence=4))
    [row] = await tracked(watcher_db)
    assert row.status == "stopped"
    # Reinstated (the transaction that took its nonce was reorged out): watched again.
    await deliver(watcher_db, "ethereum", updated("ethereum", tx_hash, "canceling", sequence=5))
    [row] = await tracked(watcher_db)
    assert row.status == "tracking"


# -- the Tron devnet -----------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def tron_tracker(
    tron_chain: TronDevnet, tron_watcher_db: Database
) -> AsyncIterator[OutgoingTxTracker]:
    client = TronClient(tron_chain.url, timeout_seconds=2)
    try:
        yield OutgoingTxTracker(
            tron_watcher_db,
            client,
            "tron",
            TrackerConfig(confirmations=19, reorg_window=64),
            producer="chain-watcher-tron",
        )
    finally:
        await client.close()


@asyncio
async def test_tron_mined_then_confirmed_by_the_solidified_chain(
    tron_chain: TronDevnet, tron_watcher_db: Database, tron_tracker: OutgoingTxTracker
) -> None:
    db = tron_watcher_db
    sent = tron_chain.transfer(0, fresh_tron_account().address, 2_000_000, mine=False)
    await deliver(db, "tron", updated("tron", sent.txid, "broadcast", sequence=2))
    # gettransactionbyid knows only transactions in blocks: a pooled one is "not found",
    # which the gateway acts on only past its expiration.
    assert await tron_tracker.tick() == 1
    assert [t for t, _ in await history(db)] == ["not_found"]
    [block] = tron_chain.mine(1)
    assert await tron_tracker.tick() == 1
    [mined] = await queued_events(db, "chain.tx.mined")
    assert (mined.subject, mined.data["block_number"]) == (f"tron:{sent.txid}", block)
    assert mined.data["block_hash"] == tron_chain.block_id(block)
    assert mined.data["success"] is True
    assert mined.data["energy_used"] > 0
    assert mined.data["gas_used"] is None

    while tron_chain.solid() < block:
        tron_chain.mine(1)
    assert await tron_tracker.tick() == 1
    [confirmed] = await queued_events(db, "chain.tx.confirmed")
    assert confirmed.sequence == 3
    [row] = await tracked(db)
    assert row.status == "final"  # the solidified chain does not revert


@asyncio
async def test_tron_a_failed_call_is_confirmed_unsuccessful_with_its_fee(
    tron_chain: TronDevnet, tron_watcher_db: Database, tron_tracker: OutgoingTxTracker
) -> None:
    db = tron_watcher_db
    sent = tron_chain.transfer(0, fresh_tron_account().address, 1, fail="OUT_OF_ENERGY")
    await deliver(db, "tron", updated("tron", sent.txid, "broadcast", sequence=2))
    tron_chain.mine(20)
    assert await tron_tracker.tick() == 2
    confirmed = (await queued_events(db, "chain.tx.confirmed"))[-1]
    assert confirmed.data["success"] is False
    assert int(confirmed.data["fee_paid_base_units"]) > 0


@asyncio
async def test_tron_unknown_txid_is_not_found(
    tron_chain: TronDevnet, tron_watcher_db: Database, tron_tracker: OutgoingTxTracker
) -> None:
    db = tron_watcher_db
    txid = secrets.token_hex(32)
    await deliver(db, "tron", updated("tron", txid, "broadcast", sequence=2))
    tron_chain.mine(3)
    assert tron_chain.solid() < tron_chain.head()
    assert await tron_tracker.tick() == 1
    [event] = await queued_events(db, "chain.tx.not_found")
    # The head a Tron expiry is judged against is the solidified one, from the solidity
    # API: a full node's head is not final (and may be another node's after a failover).
    solid = tron_chain.solid()
    assert (event.subject, event.data["head_block"]) == (f"tron:{txid}", solid)
    client = TronClient(tron_chain.url, timeout_seconds=2)
    try:
        [header] = await client.headers([solid])
        assert (await client.finalized_header()).hash == header.hash
    finally:
        await client.close()
    assert datetime.fromisoformat(event.data["head_timestamp"]) == header.timestamp


@asyncio
async def test_tron_broadcasthex_sends_once_and_a_duplicate_counts_as_sent(
    tron_chain: TronDevnet, tron_watcher_db: Database, tron_tracker: OutgoingTxTracker
) -> None:
    payer = tron_chain.accounts[0]

    async def signed(key_hex: str) -> tuple[str, str]:
        async with httpx.AsyncClient(base_url=tron_chain.url, timeout=5) as http:
            built = await http.post(
                "wallet/createtransaction",
                json={
                    "owner_address": payer.base58,
                    "to_address": fresh_tron_account().address,
                    "amount": 1_000,
                    "visible": True,
                },
            )
        body = built.json()
        raw, tx_id = bytes.fromhex(body["raw_data_hex"]), body["txID"]
        signature = PrivateKey(bytes.fromhex(key_hex)).sign_msg_hash(bytes.fromhex(tx_id))
        return tx_id, encode_signed(raw, signature.to_bytes()).hex()

    tx_id, signed_hex = await signed(payer.private_key)
    _, forged_hex = await signed(fresh_tron_account().private_key)
    client = TronClient(tron_chain.url, timeout_seconds=2)
    try:
        assert await client.send_raw_transaction(signed_hex) == tx_id
        assert await client.send_raw_transaction(signed_hex) == tx_id  # DUP: sent
        with pytest.raises(BroadcastRejected):
            await client.send_raw_transaction(forged_hex)  # signed by another key: SIGERROR
    finally:
        await client.close()
    await deliver(tron_watcher_db, "tron", updated("tron", tx_id, "broadcast", sequence=2))
    tron_chain.mine(1)
    assert await tron_tracker.tick() == 1
    [mined] = await queued_events(tron_watcher_db, "chain.tx.mined")
    assert mined.data["tx_hash"] == tx_id
    assert mined.data["block_number"] == tron_chain.head()
