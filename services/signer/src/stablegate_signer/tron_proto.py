"""Tron's `protocol.Transaction` protobuf, encoded by hand for the contracts the signer signs.

Field numbers are java-tron's (protocol/src/main/protos/core/Tron.proto and
core/contract/*.proto). Encoding follows proto3: fields in ascending number order, and a
field equal to its default (0, false, empty) is left out, as java-tron's serializer does —
the node re-serializes `raw_data` and checks the signature against sha256 of those bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# core/Tron.proto: Transaction.Contract.ContractType
CONTRACT_TYPE_NUMBERS = {
    "TransferContract": 1,
    "TriggerSmartContract": 31,
    "FreezeBalanceV2Contract": 54,
    "DelegateResourceContract": 57,
    "UnDelegateResourceContract": 58,
}
# core/contract/common.proto: ResourceCode
RESOURCE_CODES = {"BANDWIDTH": 0, "ENERGY": 1}
TYPE_URL_PREFIX = "type.googleapis.com/protocol."


def _varint(value: int) -> bytes:
    if value < 0:
        # int64 negatives are ten-byte two's complement; nothing the signer signs is negative.
        raise ValueError("negative values are not encoded")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def varint_field(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(value) if value else b""


def bytes_field(field: int, value: bytes) -> bytes:
    return _key(field, 2) + _varint(len(value)) + value if value else b""


@dataclass(frozen=True)
class TronContract:
    """One `Transaction.Contract`: its type name and its already-encoded parameter message."""

    type_name: str
    parameter: bytes

    def encode(self) -> bytes:
        type_url = (TYPE_URL_PREFIX + self.type_name).encode()
        any_message = bytes_field(1, type_url) + bytes_field(2, self.parameter)
        return varint_field(1, CONTRACT_TYPE_NUMBERS[self.type_name]) + bytes_field(2, any_message)


def transfer_contract(owner: bytes, to: bytes, amount: int) -> TronContract:
    # TransferContract {owner_address = 1; to_address = 2; int64 amount = 3}
    body = bytes_field(1, owner) + bytes_field(2, to) + varint_field(3, amount)
    return TronContract("TransferContract", body)


def trigger_smart_contract(owner: bytes, contract: bytes, data: bytes) -> TronContract:
    # TriggerSmartContract {owner_address = 1; contract_address = 2; int64 call_value = 3;
    # bytes data = 4; ...}; call_value stays 0: a token transfer sends no TRX.
    body = bytes_field(1, owner) + bytes_field(2, contract) + bytes_field(4, data)
    return TronContract("TriggerSmartContract", body)


def freeze_balance_v2_contract(owner: bytes, frozen_balance: int, resource: str) -> TronContract:
    # FreezeBalanceV2Contract {owner_address = 1; int64 frozen_balance = 2;
    # ResourceCode resource = 3}
    body = (
        bytes_field(1, owner)
        + varint_field(2, frozen_balance)
        + varint_field(3, RESOURCE_CODES[resource])
    )
    return TronContract("FreezeBalanceV2Contract", body)


def delegate_resource_contract(
    owner: bytes, receiver: bytes, balance: int, resource: str, lock: bool, lock_period: int
) -> TronContract:
    # DelegateResourceContract {owner_address = 1; resource = 2; int64 balance = 3;
    # receiver_address = 4; bool lock = 5; int64 lock_period = 6}
    body = (
        bytes_field(1, owner)
        + varint_field(2, RESOURCE_CODES[resource])
        + varint_field(3, balance)
        + bytes_field(4, receiver)
        + varint_field(5, int(lock))
        + varint_field(6, lock_period)
    )
    return TronContract("DelegateResourceContract", body)


def undelegate_resource_contract(
    owner: bytes, receiver: bytes, balance: int, resource: str
) -> TronContract:
    # UnDelegateResourceContract {owner_address = 1; resource = 2; int64 balance = 3;
    # receiver_address = 4}
    body = (
        bytes_field(1, owner)
        + varint_field(2, RESOURCE_CODES[resource])
        + varint_field(3, balance)
        + bytes_field(4, receiver)
    )
    return TronContract("UnDelegateResourceContract", body)


def encode_raw(
    *,
    ref_block_bytes: bytes,
    ref_block_hash: bytes,
    expiration: int,
    timestamp: int,
    contract: TronContract,
    fee_limit: int,
) -> bytes:
    """`Transaction.raw`: ref_block_bytes = 1, ref_block_hash = 4, expiration = 8,
    contract = 11, timestamp = 14, fee_limit = 18. No memo (data = 10), no permission id."""
    return (
        bytes_field(1, ref_block_bytes)
        + bytes_field(4, ref_block_hash)
        + varint_field(8, expiration)
        + bytes_field(11, contract.encode())
        + varint_field(14, timestamp)
        + varint_field(18, fee_limit)
    )


def encode_signed(raw: bytes, signature: bytes) -> bytes:
    """`Transaction {raw raw_data = 1; repeated bytes signature = 2}`: what broadcasthex takes."""
    return bytes_field(1, raw) + bytes_field(2, signature)


def txid(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()
