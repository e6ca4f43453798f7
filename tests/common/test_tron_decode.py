"""Decoding java-tron answers, held to recorded real-node response shapes (research
chains.md §3.3: Nile captures from the java-tron HTTP API documentation): blocks into
headers, transaction infos into TRC-20 transfers, constant calls into integers, and the
node's error answers into chain exceptions."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stablegate_common.chains import ChainError, ChainUnavailable
from stablegate_common.chains.tron import _constant_word, _runs
from stablegate_common.chains.tron_decode import (
    TRANSFER_TOPIC,
    TronBlock,
    block_number,
    decode_block,
    decode_transfers,
    to_base58,
    to_hex20,
    to_hex41,
)
from stablegate_common.chains.tron_http import _status_error, _text_error, node_error

USDT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
USDT_HEX20 = "a614f803b6fd780986a42c78ec9c7f77e6ded13c"
LOOK_ALIKE = "THk5qH79SoAaUnUh8JVdRarSESTZpqPjSQ"  # the counterfeit "USDT" of chains.md §1.5
ALLOWED = {USDT_HEX20: USDT}
SENDER20 = "dd791d6b49e190062d650e6a23c575510d35f2f9"
RECIPIENT20 = "7e5f4552091a69125d5dfcb7b8c2659029395bdf"
RECIPIENT = "TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HC"

# /wallet/getblockbynum, real capture (trimmed to one transaction).
BLOCK: dict[str, Any] = {
    "blockID": "0000000003fe266bf6b6d392f654dc2e5011601546ed04623d9fcc4e9d439a25",
    "block_header": {
        "raw_data": {
            "number": 66987627,
            "txTrieRoot": "f8156964cc3e5793a368f938a18ea45c02bd48fe3a412f7091ce8d9ef56df174",
            "witness_address": "41e7860196ad5b5718c1d6326babab039b70b8c1cd",
            "parentHash": "0000000003fe266a65d5194c947f6f7a059d4646c8e9a5293226bc7fdcfc775e",
            "version": 34,
            "timestamp": 1777445307000,
        },
        "witness_signature": "55a2e100",
    },
    "transactions": [
        {
            "ret": [{"contractRet": "SUCCESS"}],
            "signature": ["2154e8efa3c31b"],
            "txID": "01b4cde4197b9d1a1ff09ef5d2b1d939d3ec2401b3f002ebd0802c0f30a6e4ca",
            "raw_data": {
                "contract": [
                    {
                        "parameter": {
                            "value": {
                                "data": "a6bd98ac",
                                "owner_address": "41dd791d6b49e190062d650e6a23c575510d35f2f9",
                                "contract_address": "419ff8fc48fb114ccd5bbdc24a86f0c73082f08825",
                            },
                            "type_url": "type.googleapis.com/protocol.TriggerSmartContract",
                        },
                        "type": "TriggerSmartContract",
                    }
                ],
                "ref_block_bytes": "1c8b",
                "ref_block_hash": "d78785ed02dd918f",
                "expiration": 1777437813000,
                "fee_limit": 10000000000,
                "timestamp": 1777437756016,
            },
            "raw_data_hex": "0a021c8b2208d78785ed02dd918f",
        }
    ],
}
TX_A = "01b4cde4197b9d1a1ff09ef5d2b1d939d3ec2401b3f002ebd0802c0f30a6e4ca"
TX_B = "e3cb" + "00" * 28 + "e598"
TX_TRX = "ff44a2823a870c12f12a4ca6e7647650356bc2bb5e02c5855312cf2db4c950c1"

# /wallet/gettransactioninfobyid, real capture: a SUCCESS call that emitted another event.
OTHER_EVENT_INFO: dict[str, Any] = {
    "id": TX_A,
    "fee": 5254500,
    "blockNumber": 66987627,
    "blockTimeStamp": 1777437762000,
    "contractResult": [""],
    "contract_address": "419ff8fc48fb114ccd5bbdc24a86f0c73082f08825",
    "receipt": {
        "energy_fee": 4458500,
        "energy_usage_total": 44585,
        "net_fee": 796000,
        "result": "SUCCESS",
    },
    "log": [
        {
            "address": "9ff8fc48fb114ccd5bbdc24a86f0c73082f08825",
            "topics": [
                "c66625d0" + "00" * 27 + "3083",
                "000000000000000000000000dd791d6b49e190062d650e6a23c575510d35f2f9",
                "00" * 31 + "07",
            ],
            "data": "00" * 31 + "07",
        }
    ],
}
# The TRC-20 Transfer entry in the real log format (chains.md §3.3).
TRANSFER_INFO: dict[str, Any] = {
    "id": TX_B,
    "fee": 13373500,
    "blockNumber": 66987627,
    "blockTimeStamp": 1777445307000,
    "contractResult": [""],
    "contract_address": "41a614f803b6fd780986a42c78ec9c7f77e6ded13c",
    "receipt": {
        "energy_fee": 13028500,
        "energy_usage_total": 130285,
        "net_fee": 345000,
        "result": "SUCCESS",
    },
    "log": [
        {
            "address": USDT_HEX20,
            "topics": [TRANSFER_TOPIC, "0" * 24 + SENDER20, "0" * 24 + RECIPIENT20],
            "data": "0000000000000000000000000000000000000000000000000000000000bebc20",
        }
    ],
}
# A plain TRX transfer's info (real capture): no receipt result, no logs.
TRX_INFO: dict[str, Any] = {
    "id": TX_TRX,
    "fee": 267000,
    "blockNumber": 66987627,
    "blockTimeStamp": 1777445121000,
    "contractResult": [""],
    "receipt": {"net_fee": 267000},
}


def _tx(tx_id: str, kind: str = "TriggerSmartContract") -> dict[str, Any]:
    tx: dict[str, Any] = copy.deepcopy(BLOCK["transactions"][0])
    tx["txID"] = tx_id
    tx["raw_data"]["contract"][0]["type"] = kind
    return tx


def _block(*txs: dict[str, Any]) -> TronBlock:
    raw = copy.deepcopy(BLOCK)
    raw["transactions"] = list(txs)
    decoded = decode_block(raw, "wallet/getblockbynum")
    assert decoded is not None
    return decoded


def _decode(block: TronBlock, infos: Any) -> list[tuple[str, int, str, int]]:
    found = decode_transfers(block, infos, ALLOWED, "wallet/gettransactioninfobyblocknum")
    return [(t.tx_hash, t.log_index, t.to_address, t.amount_base_units) for t in found]


# -- blocks --------------------------------------------------------------------------------


def test_a_real_block_becomes_a_header() -> None:
    block = decode_block(BLOCK, "wallet/getblockbynum")
    assert block is not None
    assert block.header.number == 66987627
    assert block.header.hash == BLOCK["blockID"]
    assert block.header.parent_hash == BLOCK["block_header"]["raw_data"]["parentHash"]
    assert block.header.timestamp == datetime(2026, 4, 29, 6, 48, 27, tzinfo=UTC)
    assert block.tx_ids == (TX_A,)
    assert block.log_tx_ids == {TX_A}
    assert block_number(BLOCK, "wallet/getnowblock") == 66987627


def test_an_empty_block_and_a_missing_one() -> None:
    raw = copy.deepcopy(BLOCK)
    del raw["transactions"]  # an empty block has no `transactions` key
    block = decode_block(raw, "wallet/getblockbynum")
    assert block is not None
    assert (block.tx_ids, block.log_tx_ids) == ((), frozenset())
    assert decode_block({}, "wallet/getblockbynum") is None  # `{}` = not found
    with pytest.raises(ChainError, match="no block yet"):
        block_number({}, "wallet/getnowblock")


def test_protobuf_omits_zero_fields_of_the_genesis_block() -> None:
    genesis = {"blockID": "00" * 32, "block_header": {"raw_data": {}}}
    block = decode_block(genesis, "wallet/getblockbynum")
    assert block is not None
    assert (block.header.number, block.header.parent_hash) == (0, "0" * 64)
    assert block.header.timestamp == datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "may_log"),
    [
        ("TriggerSmartContract", True),
        ("CreateSmartContract", True),
        ("TransferContract", False),
        ("TransferAssetContract", False),
        ("FreezeBalanceV2Contract", False),
    ],
)
def test_only_contract_calls_need_their_receipts(kind: str, may_log: bool) -> None:
    block = _block(_tx(TX_A, kind))
    assert (TX_A in block.log_tx_ids) is may_log


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.update(blockID="xyz"), "blockID"),
        (lambda b: b["block_header"]["raw_data"].update(number="-1"), "block number"),
        (lambda b: b.update(transactions={}), "not a list"),
        (lambda b: b["transactions"][0].update(txID=None), "txID"),
        (lambda b: b.update(block_header=[]), "block_header"),
    ],
)
def test_a_broken_block_is_an_error_not_a_skip(mutate: Any, message: str) -> None:
    raw = copy.deepcopy(BLOCK)
    mutate(raw)
    with pytest.raises(ChainError, match=message):
        decode_block(raw, "wallet/getblockbynum")


# -- transfers -----------------------------------------------------------------------------


def test_a_transfer_log_of_the_registered_contract_counts() -> None:
    block = _block(_tx(TX_B))
    [transfer] = decode_transfers(block, [TRANSFER_INFO], ALLOWED, "p")
    assert transfer.token_contract == USDT
    assert transfer.tx_hash == TX_B
    assert transfer.log_index == 0
    assert transfer.block_number == 66987627
    assert transfer.block_hash == BLOCK["blockID"]
    assert transfer.from_address == to_base58(SENDER20)
    assert transfer.to_address == RECIPIENT
    assert transfer.amount_base_units == 12_500_000


def test_the_log_index_counts_every_log_of_the_block_in_block_order() -> None:
    block = _block(_tx(TX_A), _tx(TX_TRX, "TransferContract"), _tx(TX_B))
    other_then_transfer = copy.deepcopy(OTHER_EVENT_INFO)
    other_then_transfer["log"].append(copy.deepcopy(TRANSFER_INFO["log"][0]))
    # The node's answer order does not matter: the block's transaction order does.
    infos = [TRANSFER_INFO, TRX_INFO, other_then_transfer]
    assert _decode(block, infos) == [
        (TX_A, 1, RECIPIENT, 12_500_000),
        (TX_B, 2, RECIPIENT, 12_500_000),
    ]


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda i: i["receipt"].update(result="REVERT"), "reverted"),
        (lambda i: i["receipt"].update(result="OUT_OF_ENERGY"), "out of energy"),
        (lambda i: i.update(receipt={"net_fee": 1}), "no result (DEFAULT)"),
        (lambda i: i.update(result="FAILED"), "failed at the top level"),
        (lambda i: i["log"][0].update(address=to_hex20(LOOK_ALIKE)), "look-alike token"),
        (lambda i: i["log"][0]["topics"].append("00" * 32), "four topics (TRC-721)"),
        (lambda i: i["log"][0]["topics"].__setitem__(0, "ab" * 32), "another event"),
        (lambda i: i["log"][0].update(data="00" * 64), "two data words"),
        (lambda i: i["log"][0]["topics"].__setitem__(2, "ff" * 32), "not an address topic"),
    ],
)
def test_what_does_not_count(mutate: Any, why: str) -> None:
    info = copy.deepcopy(TRANSFER_INFO)
    mutate(info)
    assert _decode(_block(_tx(TX_B)), [info]) == [], why


@pytest.mark.parametrize(
    "address",
    [USDT, "41" + USDT_HEX20, "0x" + USDT_HEX20, USDT_HEX20.upper()],
    ids=["base58 (visible=true)", "hex41", "0x hex", "upper-case hex"],
)
def test_every_form_of_the_log_address_is_understood(address: str) -> None:
    info = copy.deepcopy(TRANSFER_INFO)
    info["log"][0]["address"] = address
    assert _decode(_block(_tx(TX_B)), [info]) == [(TX_B, 0, RECIPIENT, 12_500_000)]


def test_a_block_that_changed_between_reads_is_refused() -> None:
    with pytest.raises(ChainError, match="changed while it was read"):
        _decode(_block(_tx(TX_A)), [OTHER_EVENT_INFO, TRANSFER_INFO])


def test_a_contract_call_without_its_info_is_refused() -> None:
    with pytest.raises(ChainError, match=f"no transaction info for {TX_B}"):
        _decode(_block(_tx(TX_A), _tx(TX_B)), [OTHER_EVENT_INFO])


@pytest.mark.parametrize(
    "infos",
    [{"Error": "x"}, [{"id": "nope"}], [dict(TRANSFER_INFO, blockNumber=1)]],
    ids=["not a list", "bad id", "another block's info"],
)
def test_broken_infos_are_errors(infos: Any) -> None:
    with pytest.raises(ChainError):
        _decode(_block(_tx(TX_B)), infos)


def test_an_empty_answer_for_a_block_without_contract_calls() -> None:
    assert _decode(_block(_tx(TX_TRX, "TransferContract")), {}) == []
    assert _decode(_block(), []) == []


# -- addresses -----------------------------------------------------------------------------


def test_the_three_forms_of_one_account() -> None:
    # chains.md §3.1: base58, hex41 (visible=false), 20-byte (logs and topics).
    assert to_hex41(RECIPIENT) == "41" + RECIPIENT20
    assert to_hex20(RECIPIENT) == RECIPIENT20
    assert to_base58("41" + RECIPIENT20) == RECIPIENT
    assert to_base58(RECIPIENT20) == RECIPIENT
    assert to_base58("0x" + RECIPIENT20) == RECIPIENT
    assert to_hex41(USDT) == "41" + USDT_HEX20


@pytest.mark.parametrize("bad", ["TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u", "41abc", "hello", ""])
def test_what_is_not_a_tron_address(bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the codec raises plain ValueErrors
        to_hex41(bad)


@given(st.binary(min_size=20, max_size=20))
def test_address_forms_round_trip(raw: bytes) -> None:
    base58 = to_base58(raw.hex())
    assert base58.startswith("T")
    assert len(base58) == 34
    assert to_hex20(base58) == raw.hex()
    assert to_base58(to_hex41(base58)) == base58


# -- constant calls ------------------------------------------------------------------------


def test_a_real_balance_of_answer_is_a_uint() -> None:
    # /wallet/triggerconstantcontract, real capture (trimmed).
    answer = {
        "result": {"result": True},
        "energy_used": 935,
        "constant_result": ["0000000000000000000000000000000000000000000000000000000040cfcc00"],
        "transaction": {"ret": [{}], "visible": False, "txID": "cff6488e"},
    }
    assert int(_constant_word(answer, "p", "balanceOf"), 16) == 0x40CFCC00


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            {
                "result": {"result": True, "message": "REVERT opcode executed"},
                "constant_result": [""],
                "transaction": {"ret": [{"ret": "FAILED"}]},
            },
            "REVERT opcode executed",
        ),
        (
            {
                "result": {
                    "code": "CONTRACT_VALIDATE_ERROR",
                    "message": b"No contract or not a valid smart contract".hex(),
                }
            },
            "CONTRACT_VALIDATE_ERROR No contract or not a valid smart contract",
        ),
        ({"result": {"result": True}, "constant_result": [""]}, "not a uint256"),
        ({"result": {"result": True}}, "not a uint256"),
        ([], "unexpected answer"),
    ],
    ids=["revert", "validate error (hex message)", "no code", "no result", "not an object"],
)
def test_failed_constant_calls_are_errors(answer: Any, message: str) -> None:
    with pytest.raises(ChainError, match=message):
        _constant_word(answer, "p", "balanceOf")


# -- node errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("class java.lang.IllegalAccessException : lack of computing resources", ChainUnavailable),
        ("Exceed the user daily usage (100000), the maximum query frequency", ChainUnavailable),
        ("class java.lang.NullPointerException : null", ChainError),
        ("this API is unavailable due to config", ChainError),
    ],
)
def test_error_bodies_are_translated(message: str, kind: type[ChainError]) -> None:
    error = node_error("wallet/getnowblock", message)
    assert type(error) is kind
    assert "wallet/getnowblock" in str(error)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, ChainUnavailable), (502, ChainUnavailable), (503, ChainUnavailable), (404, ChainError)],
)
def test_http_statuses_are_translated(status: int, kind: type[ChainError]) -> None:
    response = httpx.Response(status, text='{"Error":"this API is unavailable due to config"}')
    assert type(_status_error("wallet/getblockbynum", response)) is kind


def test_plain_text_answers_are_translated() -> None:
    lite = _text_error("p", "this API is closed because this node is a lite fullnode")
    assert type(lite) is ChainError
    assert "full node" in str(lite)
    assert type(_text_error("p", "<html>502 Bad Gateway</html>")) is ChainUnavailable


@pytest.mark.parametrize(
    ("numbers", "runs"),
    [
        ([], []),
        ([5], [(5, 5)]),
        ([3, 4, 5, 9, 10, 12], [(3, 5), (9, 10), (12, 12)]),
        ([10, 9, 8, 8], [(8, 10)]),
    ],
)
def test_block_numbers_are_fetched_in_consecutive_runs(
    numbers: list[int], runs: list[tuple[int, int]]
) -> None:
    assert _runs(numbers) == runs
