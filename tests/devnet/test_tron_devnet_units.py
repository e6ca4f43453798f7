"""The Tron devnet's parts without HTTP: its protobuf encoder against tronpy's (so a txID
the devnet computes is the one a wallet signs), addresses and signatures, the token
contracts, the fee model, and the chain's rules for forks, TaPoS and solidification.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import decode
from hypothesis import given, settings
from hypothesis import strategies as st
from tronpy import keys as tron_keys
from tronpy.proto import calculate_txid_from_raw_data

from devnet.tron.chain import BroadcastError, ChainControlError
from devnet.tron.encoding import (
    TYPE_URL,
    address_word,
    encode_raw_data,
    recover_signer,
    selector,
    sign_txid,
    to_base58,
    to_hex41,
    txid_of,
    word,
)
from devnet.tron.genesis import LOOKALIKE, USDT, DevnetConfig
from devnet.tron.ledger import Account, Call, Executor, Ledger
from devnet.tron.node import DevnetNode
from devnet.tron.tokens import TRANSFER_TOPIC, call_token
from devnet.tron.transactions import SignedTx

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "41" + b.hex())
int64 = st.integers(min_value=0, max_value=2**63 - 1)
ALICE, BOB, CAROL = ("41" + f"{i:040x}" for i in (1, 2, 3))


@st.composite
def raw_transactions(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        kind = "TransferContract"
        value: dict[str, Any] = {
            "owner_address": draw(addresses),
            "to_address": draw(addresses),
            "amount": draw(int64),
        }
    else:
        kind = "TriggerSmartContract"
        value = {
            "owner_address": draw(addresses),
            "contract_address": draw(addresses),
            "data": draw(st.binary(max_size=200)).hex(),
            "call_value": draw(int64),
            "call_token_value": draw(int64),
            "token_id": draw(int64),
        }
    raw: dict[str, Any] = {
        "contract": [
            {"parameter": {"value": value, "type_url": TYPE_URL.format(kind)}, "type": kind}
        ],
        "ref_block_bytes": draw(st.binary(min_size=2, max_size=2)).hex(),
        "ref_block_hash": draw(st.binary(min_size=8, max_size=8)).hex(),
        "expiration": draw(int64),
        "timestamp": draw(int64),
    }
    if draw(st.booleans()):
        raw["fee_limit"] = draw(int64)
    return raw


@settings(max_examples=200, deadline=None)
@given(raw_transactions())
def test_txid_matches_tronpys_protobuf(raw: dict[str, Any]) -> None:
    assert txid_of(encode_raw_data(raw)) == calculate_txid_from_raw_data(raw)


def test_encoding_reproduces_the_captured_raw_data_hex() -> None:
    # chains.md §3.3, triggersmartcontract: the capture elides the addresses and call data
    # but keeps the frame around them (field tags, lengths, ref block, expiration,
    # timestamp, fee_limit), which any 68-byte transfer call must reproduce.
    value = {
        "data": (selector("transfer(address,uint256)") + address_word(BOB) + word(100)).hex(),
        "owner_address": ALICE,
        "contract_address": CAROL,
    }
    kind = "TriggerSmartContract"
    raw = {
        "contract": [
            {"parameter": {"value": value, "type_url": TYPE_URL.format(kind)}, "type": kind}
        ],
        "ref_block_bytes": "28c3",
        "ref_block_hash": "ce6d340282788569",
        "fee_limit": 100000000,
        "expiration": 1777447227000,
        "timestamp": 1777447168009,
    }
    encoded = encode_raw_data(raw).hex()
    assert encoded.startswith("0a0228c32208ce6d34028278856940f89cf1c0dd335aae01081f12a9010a31")
    assert encoded.endswith("900180c2d72f")
    assert txid_of(bytes.fromhex(encoded)) == calculate_txid_from_raw_data(raw)


@given(addresses)
def test_address_forms_round_trip_and_agree_with_tronpy(address: str) -> None:
    base58 = to_base58(address)
    assert base58 == tron_keys.to_base58check_address(address)
    assert to_hex41(base58) == address == tron_keys.to_hex_address(base58)
    assert to_hex41("0x" + address[2:]) == to_hex41(address[2:]) == address


@pytest.mark.parametrize(
    "bad", ["T" + "1" * 33, "42" + "00" * 20, "0x1234", "TV6BCWFzTBXyqQVMPizimCG21ugX9XVseC"]
)
def test_bad_addresses_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        to_hex41(bad)


def test_signatures_recover_the_signer_in_both_v_conventions() -> None:
    key = tron_keys.PrivateKey(bytes(range(1, 33)))
    txid = "ab" * 32
    signature = sign_txid(txid, key.hex())
    assert signature == key.sign_msg_hash(bytes.fromhex(txid)).hex()
    assert recover_signer(txid, signature) == key.public_key.to_hex_address()
    tronweb = signature[:128] + f"{int(signature[128:], 16) + 27:02x}"
    assert recover_signer(txid, tronweb) == key.public_key.to_hex_address()
    assert recover_signer("cd" * 32, signature) != key.public_key.to_hex_address()
    assert recover_signer(txid, signature[:-2]) is None
    assert recover_signer(txid, signature[:128] + "05") is None


# --- tokens ---------------------------------------------------------------------------------


def transfer_data(to: str, amount: int) -> bytes:
    return selector("transfer(address,uint256)") + address_word(to) + word(amount)


@pytest.mark.parametrize(
    ("balances", "amount", "status", "energy"),
    [
        ({ALICE: 100, BOB: 1}, 40, "SUCCESS", 64_285),  # recipient already holds USDT
        ({ALICE: 100}, 40, "SUCCESS", 130_285),  # empty recipient: a new storage slot
        ({ALICE: 100}, 100, "SUCCESS", 130_285),  # the whole balance
        ({ALICE: 100}, 101, "REVERT", 1_348),
        ({}, 1, "REVERT", 1_348),
    ],
)
def test_usdt_transfer(balances: dict[str, int], amount: int, status: str, energy: int) -> None:
    before = dict(balances)
    result = call_token(USDT, balances, ALICE, transfer_data(BOB, amount))
    assert (result.status, result.energy) == (status, energy)
    if status == "SUCCESS":
        assert balances[ALICE] == before[ALICE] - amount
        assert balances[BOB] == before.get(BOB, 0) + amount
        (log,) = result.logs
        assert log.topics == (TRANSFER_TOPIC, address_word(ALICE).hex(), address_word(BOB).hex())
        assert int(log.data, 16) == amount
        assert result.output == word(0)  # USDT-TRC20 returns false on success
    else:
        assert balances == before
        assert not result.logs
        assert decode(["string"], result.output[4:])[0] == "transfer amount exceeds balance"


def test_lookalike_returns_true_and_logs_its_own_address() -> None:
    result = call_token(LOOKALIKE, {ALICE: 5}, ALICE, transfer_data(CAROL, 5))
    assert result.output == word(1)
    assert result.logs[0].address == LOOKALIKE.address
    assert result.energy == 29_610


@pytest.mark.parametrize(
    ("signature", "args", "expected"),
    [
        ("decimals()", b"", word(6)),
        ("balanceOf(address)", address_word(ALICE), word(7)),
        ("balanceOf(address)", address_word(CAROL), word(0)),
        ("totalSupply()", b"", word(9)),
    ],
)
def test_token_views(signature: str, args: bytes, expected: bytes) -> None:
    result = call_token(USDT, {ALICE: 7, BOB: 2}, CAROL, selector(signature) + args)
    assert result.status == "SUCCESS"
    assert result.output == expected


def test_token_strings_and_unknown_functions() -> None:
    name = call_token(USDT, {}, ALICE, selector("name()"))
    assert decode(["string"], name.output)[0] == "Tether USD"
    assert call_token(USDT, {}, ALICE, selector("approve(address,uint256)")).status == "REVERT"
    assert call_token(USDT, {}, ALICE, selector("transfer(address,uint256)")).status == "REVERT"


# --- fees -----------------------------------------------------------------------------------


def ledger_with(balance: int, free_used: int = 0, *, recipient: bool = True) -> Ledger:
    ledger = Ledger(tokens={USDT.address: {ALICE: 10**9}})
    ledger.accounts[ALICE] = Account(balance, 0, free_used, 1_000)
    if recipient:
        ledger.accounts[BOB] = Account(0, 0)
    return ledger


def trx_call(amount: int, to: str = BOB) -> Call:
    return Call("TransferContract", ALICE, to, amount, b"", 0)


def usdt_call(amount: int, fee_limit: int) -> Call:
    return Call(
        "TriggerSmartContract", ALICE, USDT.address, 0, transfer_data(BOB, amount), fee_limit
    )


@pytest.mark.parametrize(
    ("call", "balance", "free_used", "result", "fee", "net_usage", "tokens_moved"),
    [
        (trx_call(10), 10**9, 0, "SUCCESS", 0, 265, 0),  # free bandwidth
        (trx_call(10), 10**9, 400, "SUCCESS", 265_000, 0, 0),  # 400 + 265 > 600: burns
        (usdt_call(1, 30_000_000), 10**9, 0, "SUCCESS", 13_028_500, 345, 1),
        (usdt_call(1, 30_000_000), 10**9, 300, "SUCCESS", 13_028_500 + 345_000, 0, 1),
        (usdt_call(1, 10_000_000), 10**9, 0, "OUT_OF_ENERGY", 10_000_000, 345, 0),
        (usdt_call(1, 30_000_000), 5_000_000, 0, "OUT_OF_ENERGY", 5_000_000, 345, 0),
        (usdt_call(10**10, 30_000_000), 10**9, 0, "REVERT", 134_800, 345, 0),
    ],
)
def test_fee_model(
    call: Call,
    balance: int,
    free_used: int,
    result: str,
    fee: int,
    net_usage: int,
    tokens_moved: int,
) -> None:
    ledger = ledger_with(balance, free_used)
    size = 265 if call.kind == "TransferContract" else 345
    receipt = Executor({USDT.address: USDT}).execute(ledger, call, size, now_ms=1_000)
    assert (receipt.result, receipt.fee, receipt.net_usage) == (result, fee, net_usage)
    assert ledger.accounts[ALICE].balance == balance - fee - (
        call.amount if call.kind == "TransferContract" else 0
    )
    assert ledger.tokens[USDT.address].get(BOB, 0) == tokens_moved


def test_free_bandwidth_recovers_over_a_day() -> None:
    account = Account(0, 0, free_net_used=600, latest_consume_free_time=0)
    assert account.free_net_used_at(0) == 600
    assert account.free_net_used_at(43_200_000) == 300
    assert account.free_net_used_at(86_400_000) == 0


def test_activation_costs_and_refusals() -> None:
    executor = Executor({USDT.address: USDT})
    ledger = ledger_with(5_000_000, recipient=False)
    receipt = executor.execute(ledger, trx_call(1_000_000), 265, 1_000)
    assert (receipt.fee, receipt.net_fee) == (1_100_000, 100_000)
    assert ledger.accounts[BOB].balance == 1_000_000
    assert ledger.accounts[ALICE].balance == 2_900_000
    with pytest.raises(Exception, match="balance is not sufficient"):
        executor.execute(ledger, trx_call(2_900_001), 265, 1_000)
    with pytest.raises(Exception, match="yourself"):
        executor.execute(ledger, trx_call(1, ALICE), 265, 1_000)
    assert ledger.accounts[ALICE].balance == 2_900_000  # refusals leave nothing behind


# --- chain rules ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node() -> DevnetNode:
    return DevnetNode(DevnetConfig(block_time=0, solidification_depth=5, accounts=3))


def test_premine_puts_the_solid_block_above_genesis(node: DevnetNode) -> None:
    assert node.chain.solid_number >= 1
    assert node.chain.head.number - node.chain.solid_number == 5
    for block in node.chain.blocks[1:]:
        assert block.parent_id == node.chain.blocks[block.number - 1].block_id
        assert int(block.block_id[:16], 16) == block.number


def test_forks_never_reach_the_solid_block(node: DevnetNode) -> None:
    solid = node.chain.solid_number
    solid_id = node.chain.blocks[solid].block_id
    with pytest.raises(ChainControlError):
        node.chain.fork(6)
    node.chain.fork(5, blocks=1)  # shorter chain: the solid block must not go back
    assert node.chain.solid_number == solid
    assert node.chain.blocks[solid].block_id == solid_id
    with pytest.raises(ChainControlError):
        node.chain.fork(2)
    node.chain.fork(1)  # the one block above the solid one may still change
    node.mine(5)


def test_tapos_follows_the_canonical_chain(node: DevnetNode) -> None:
    sender = node.accounts[0]
    old = node.chain.head
    value = {"amount": 1, "owner_address": sender.address, "to_address": node.accounts[1].address}
    raw = {
        "contract": [
            {
                "parameter": {"value": value, "type_url": TYPE_URL.format("TransferContract")},
                "type": "TransferContract",
            }
        ],
        "ref_block_bytes": old.block_id[12:16],
        "ref_block_hash": old.block_id[16:32],
        "expiration": old.timestamp + 60_000,
        "timestamp": old.timestamp,
    }
    unsigned = SignedTx.from_raw(raw)
    tx = unsigned.with_signature(sign_txid(unsigned.txid, sender.private_key))
    node.chain.fork(1)  # the referenced block is gone
    with pytest.raises(BroadcastError) as refused:
        node.chain.broadcast(tx)
    assert refused.value.code == "TAPOS_ERROR"
    (unsigned,) = [
        SignedTx.from_raw(
            {
                **raw,
                "ref_block_bytes": node.chain.head.block_id[12:16],
                "ref_block_hash": node.chain.head.block_id[16:32],
            }
        )
    ]
    tx = unsigned.with_signature(sign_txid(unsigned.txid, sender.private_key))
    node.chain.broadcast(tx)
    (block,) = node.mine()
    assert [e.tx.txid for e in block.entries] == [tx.txid]


def test_pool_drops_what_no_longer_validates(node: DevnetNode) -> None:
    poor = node.accounts[2]
    balance = node.trx_balance(poor.base58)
    first = node.send_trx(
        poor.private_key, node.accounts[0].base58, balance - 2_000_000, mine=False
    )
    assert first.block is None
    with pytest.raises(Exception, match="balance is not sufficient"):
        node.send_trx(poor.private_key, node.accounts[0].base58, 5_000_000, mine=False)
    (block,) = node.mine()
    assert [e.tx.txid for e in block.entries] == [first.txid]
