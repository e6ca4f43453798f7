"""Tron: our protobuf encoding and txID against tronpy's offline builder and protobuf itself."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given, settings
from hypothesis import strategies as st
from tronpy import Tron
from tronpy.contract import Contract
from tronpy.keys import PrivateKey, Signature
from tronpy.proto import tron_pb2

from stablegate_signer import tron, tron_proto
from stablegate_signer.documents import TronTransaction, build_request
from stablegate_signer.errors import InvalidDocument
from stablegate_signer.units import format_amount
from tests.signer.support import (
    SEED,
    TRON_DEPOSIT,
    TRON_FEE,
    TRON_FEE_PATH,
    TRON_TREASURY,
    TRON_USDT,
    tron_resource,
    tron_trc20,
    tron_trx,
)

CLIENT = Tron(network="nile")  # used offline only: build(offline=True) makes no request
TRANSFER_ABI = [
    {
        "type": "function",
        "name": "transfer",
        "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
        "stateMutability": "nonpayable",
    }
]


def _ours(raw_data: dict[str, Any], **tx: Any) -> TronTransaction:
    times = {k: str(raw_data[k]) for k in ("timestamp", "expiration")}
    refs = {k: raw_data[k] for k in ("ref_block_bytes", "ref_block_hash")}
    parsed = build_request("sr_tron", [tx | times | refs]).transactions[0]
    assert isinstance(parsed, TronTransaction)
    return parsed


def _block_id(number: int, tail: str) -> str:
    return number.to_bytes(8, "big").hex() + tail


@settings(max_examples=25, deadline=None)
@given(
    amount=st.integers(1, 2**63 - 1),
    block=st.integers(0, 2**40),
    tail=st.text("0123456789abcdef", min_size=48, max_size=48),
)
def test_trx_transfer_txid_matches_tronpy(amount: int, block: int, tail: str) -> None:
    built = CLIENT.trx.transfer(TRON_FEE, TRON_DEPOSIT, amount).build(
        offline=True, ref_block_id=_block_id(block, tail)
    )
    ours = _ours(
        built._raw_data,
        **tron_trx(amount={"base_units": str(amount), "decimal": format_amount(amount, 6)}),
    )
    assert tron_proto.txid(tron.raw_data(ours)).hex() == built.txid


@settings(max_examples=25, deadline=None)
@given(amount=st.integers(1, 2**63 - 1), fee_limit=st.integers(1, 15_000_000_000))
def test_trc20_transfer_txid_matches_tronpy(amount: int, fee_limit: int) -> None:
    contract = Contract(addr=TRON_USDT, abi=TRANSFER_ABI, client=CLIENT)
    built = (
        contract.functions.transfer(TRON_TREASURY, amount)
        .with_owner(TRON_DEPOSIT)
        .fee_limit(fee_limit)
        .build(offline=True, ref_block_id=_block_id(123456, "ab" * 24))
    )
    amount_field = {"base_units": str(amount), "decimal": format_amount(amount, 6)}
    ours = _ours(built._raw_data, **tron_trc20(fee_limit=str(fee_limit), amount=amount_field))
    assert tron_proto.txid(tron.raw_data(ours)).hex() == built.txid


def test_signature_verifies_with_tronpy_and_the_signed_hex_parses() -> None:
    built = CLIENT.trx.transfer(TRON_FEE, TRON_DEPOSIT, 1_100_000).build(
        offline=True, ref_block_id=_block_id(7, "cd" * 24)
    )
    ours = _ours(built._raw_data, **tron_trx())
    signed = tron.sign(ours, SEED.private_key(TRON_FEE_PATH))
    key = PrivateKey(SEED.private_key(TRON_FEE_PATH))
    assert key.public_key.to_base58check_address() == TRON_FEE
    signature = bytes.fromhex(signed.signature or "")
    assert key.public_key.verify_msg_hash(bytes.fromhex(signed.tx_hash), Signature(signature))
    parsed = tron_pb2.Transaction.FromString(bytes.fromhex(signed.signed_hex))
    assert parsed.raw_data.SerializeToString() == bytes.fromhex(signed.raw_data_hex or "")
    assert list(parsed.signature) == [signature]
    assert parsed.raw_data.contract[0].type == tron_pb2.Transaction.Contract.TransferContract


def _java_tron_messages() -> dict[str, Any]:
    """The stake-2.0 contracts as java-tron's core/contract/*.proto define them."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="stake_test.proto", package="protocol", syntax="proto3"
    )
    b, i, e = (
        descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
        descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
        descriptor_pb2.FieldDescriptorProto.TYPE_INT32,  # enum ResourceCode encodes as varint
    )
    boolean = descriptor_pb2.FieldDescriptorProto.TYPE_BOOL
    shapes = {
        "FreezeBalanceV2Contract": [
            ("owner_address", 1, b),
            ("frozen_balance", 2, i),
            ("resource", 3, e),
        ],
        "DelegateResourceContract": [
            ("owner_address", 1, b),
            ("resource", 2, e),
            ("balance", 3, i),
            ("receiver_address", 4, b),
            ("lock", 5, boolean),
            ("lock_period", 6, i),
        ],
        "UnDelegateResourceContract": [
            ("owner_address", 1, b),
            ("resource", 2, e),
            ("balance", 3, i),
            ("receiver_address", 4, b),
        ],
    }
    for name, fields in shapes.items():
        message = proto.message_type.add(name=name)
        for field_name, number, kind in fields:
            message.field.add(name=field_name, number=number, type=kind, label=1)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"protocol.{name}"))
        for name in shapes
    }


MESSAGES = _java_tron_messages()


@pytest.mark.parametrize(
    ("purpose", "number", "extra"),
    [
        ("stake", 54, {}),
        ("resource_delegation", 57, {"lock": True, "lock_period": "86400"}),
        ("resource_delegation", 57, {"lock": False, "lock_period": "0", "resource": "BANDWIDTH"}),
        ("resource_undelegation", 58, {}),
    ],
)
def test_stake_contracts_match_protobuf(purpose: str, number: int, extra: dict[str, Any]) -> None:
    tx = build_request("sr_stake", [tron_resource(purpose, **extra)]).transactions[0]
    assert isinstance(tx, TronTransaction)
    raw = tron.raw_data(tx)
    parsed = tron_pb2.Transaction.raw.FromString(raw)  # tronpy's raw message, Any parameter
    assert parsed.SerializeToString() == raw
    contract = parsed.contract[0]
    assert contract.type == number
    assert contract.parameter.type_url == f"type.googleapis.com/protocol.{tx.contract_type}"
    cls = MESSAGES[tx.contract_type]
    resource = {"ENERGY": 1, "BANDWIDTH": 0}[tx.resource or ""]
    owner = bytes.fromhex("41") + bytes.fromhex(_hex20(TRON_FEE))
    if purpose == "stake":
        expected = cls(owner_address=owner, frozen_balance=tx.amount.base_units, resource=resource)
    else:
        fields: dict[str, Any] = {
            "owner_address": owner,
            "receiver_address": bytes.fromhex("41" + _hex20(TRON_DEPOSIT)),
            "balance": tx.amount.base_units,
            "resource": resource,
        }
        if purpose == "resource_delegation":
            fields |= {"lock": bool(tx.lock), "lock_period": tx.lock_period or 0}
        expected = cls(**fields)
    assert contract.parameter.value == expected.SerializeToString()
    assert parsed.ref_block_bytes == bytes.fromhex(tx.ref_block_bytes)
    assert parsed.expiration == tx.expiration
    assert parsed.fee_limit == 0


def _hex20(address: str) -> str:
    from tronpy.keys import to_hex_address

    return str(to_hex_address(address))[2:]


def test_tron_trx_amounts_above_int64_are_refused() -> None:
    too_big = 2**63
    with pytest.raises(InvalidDocument, match="int64"):
        build_request(
            "sr_big",
            [tron_trx(amount={"base_units": str(too_big), "decimal": format_amount(too_big, 6)})],
        )
