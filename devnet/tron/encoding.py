"""Tron wire formats: the three address forms, the protobuf bytes of a transaction's
`raw_data` (whose sha256 is the txID), and secp256k1 signatures over the txID.

The devnet encodes the few message types it supports itself rather than through
tronpy's generated protobuf module, so its tests can hold tronpy's txIDs against an
independent encoder. Inside the devnet every address is hex41 (`41` + 20 bytes, lowercase);
base58 appears only at the HTTP edge when a request says `visible`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import base58
from eth_keys.datatypes import PrivateKey, PublicKey, Signature
from eth_keys.exceptions import BadSignature
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError

Hex41 = str  # "41" + 40 lowercase hex digits

ZERO_ADDRESS: Hex41 = "41" + "00" * 20
# ContractType numbers of core/Tron.proto for the contracts the devnet runs.
CONTRACT_TYPES = {
    "TransferContract": 1,
    "TriggerSmartContract": 31,
    "FreezeBalanceV2Contract": 54,
    "UnfreezeBalanceV2Contract": 55,
    "DelegateResourceContract": 57,
    "UnDelegateResourceContract": 58,
}
CONTRACT_NAMES = {number: name for name, number in CONTRACT_TYPES.items()}
STAKE_CONTRACTS = (
    "FreezeBalanceV2Contract",
    "UnfreezeBalanceV2Contract",
    "DelegateResourceContract",
    "UnDelegateResourceContract",
)
# common.proto ResourceCode; BANDWIDTH is the default, so protobuf JSON leaves it out.
RESOURCE_CODES = {"BANDWIDTH": 0, "ENERGY": 1, "TRON_POWER": 2}
RESOURCE_NAMES = {number: name for name, number in RESOURCE_CODES.items()}
TYPE_URL = "type.googleapis.com/protocol.{}"
# Address fields of the supported contract parameters (converted by `visible`).
ADDRESS_FIELDS = ("owner_address", "to_address", "contract_address", "receiver_address")


class EncodingError(ValueError):
    """Input the node cannot parse: a bad address, hex string or transaction body."""


# --- addresses ------------------------------------------------------------------------------


def to_hex41(address: str) -> Hex41:
    """Any of base58 `T…`, `41…` hex, `0x…` or bare 20-byte hex, as hex41."""
    if address.startswith("T") and len(address) == 34:
        try:
            raw = base58.b58decode_check(address)
        except ValueError as exc:
            raise EncodingError(f"invalid base58 address {address!r}") from exc
        if len(raw) != 21 or raw[0] != 0x41:
            raise EncodingError(f"invalid base58 address {address!r}")
        return raw.hex()
    text = address.lower().removeprefix("0x")
    if len(text) == 40:
        text = "41" + text
    if len(text) != 42 or not text.startswith("41") or not _is_hex(text):
        raise EncodingError(f"invalid address {address!r}")
    return text


def to_base58(address: str) -> str:
    return base58.b58encode_check(bytes.fromhex(to_hex41(address))).decode()


def to_tvm(address: str) -> str:
    """The 20-byte form without `41`, as logs and ABI words carry it."""
    return to_hex41(address)[2:]


def parse_address(value: object, visible: bool) -> Hex41:
    """An address from a request: base58 when `visible`, hex otherwise, as the node insists."""
    if not isinstance(value, str) or not value:
        raise EncodingError(f"invalid address {value!r}")
    if visible and not value.startswith("T"):
        raise EncodingError(f"visible=true wants a base58 address, got {value!r}")
    if not visible and value.startswith("T"):
        raise EncodingError(f"visible=false wants a hex address, got {value!r}")
    return to_hex41(value)


def show_address(address: Hex41, visible: bool) -> str:
    return to_base58(address) if visible else address


def address_from_public_key(public_key: PublicKey) -> Hex41:
    return "41" + keccak(public_key.to_bytes())[-20:].hex()


def address_of_key(private_key_hex: str) -> Hex41:
    return address_from_public_key(PrivateKey(bytes.fromhex(private_key_hex)).public_key)


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def unhex(value: object, field: str) -> bytes:
    if not isinstance(value, str) or not _is_hex(value):
        raise EncodingError(f"{field} is not a hex string: {value!r}")
    return bytes.fromhex(value)


# --- protobuf -------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 is sent as ten-byte two's complement
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _int_field(number: int, value: int) -> bytes:
    # proto3 leaves out fields holding the default value
    return _varint(number << 3) + _varint(value) if value else b""


def _bytes_field(number: int, value: bytes, *, always: bool = False) -> bytes:
    if not value and not always:
        return b""
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise EncodingError(f"{field} is not an integer: {value!r}")
    try:
        return int(value)
    except ValueError as exc:
        raise EncodingError(f"{field} is not an integer: {value!r}") from exc


def resource_code(value: object) -> int:
    """A `resource` field (enum name, or its number) as its ResourceCode number."""
    if value in (None, ""):
        return 0
    if isinstance(value, str) and value in RESOURCE_CODES:
        return RESOURCE_CODES[value]
    if isinstance(value, int) and not isinstance(value, bool) and value in RESOURCE_NAMES:
        return value
    raise EncodingError(f"resource is not a ResourceCode: {value!r}")


def _address_bytes(value: Mapping[str, Any], name: str) -> bytes:
    return bytes.fromhex(to_hex41(value[name]))


def _encode_stake(kind: str, value: Mapping[str, Any]) -> bytes:
    """balance_contract.proto: FreezeBalanceV2 / UnfreezeBalanceV2 {owner_address = 1,
    frozen_balance | unfreeze_balance = 2, resource = 3}; DelegateResource /
    UnDelegateResource {owner_address = 1, resource = 2, balance = 3, receiver_address = 4,
    lock = 5, lock_period = 6} (funds-out.md §1.1)."""
    owner = _bytes_field(1, _address_bytes(value, "owner_address"))
    resource = resource_code(value.get("resource"))
    if kind in ("FreezeBalanceV2Contract", "UnfreezeBalanceV2Contract"):
        amount = "frozen_balance" if kind == "FreezeBalanceV2Contract" else "unfreeze_balance"
        return owner + _int_field(2, _int(value.get(amount, 0), amount)) + _int_field(3, resource)
    out = (
        owner
        + _int_field(2, resource)
        + _int_field(3, _int(value.get("balance", 0), "balance"))
        + _bytes_field(4, _address_bytes(value, "receiver_address"))
    )
    if kind == "DelegateResourceContract":
        out += _int_field(5, 1 if value.get("lock") else 0)
        out += _int_field(6, _int(value.get("lock_period", 0), "lock_period"))
    return out


def _encode_parameter(kind: str, value: Mapping[str, Any]) -> bytes:
    if kind in STAKE_CONTRACTS:
        return _encode_stake(kind, value)
    owner = bytes.fromhex(to_hex41(value["owner_address"]))
    if kind == "TransferContract":
        return (
            _bytes_field(1, owner)
            + _bytes_field(2, bytes.fromhex(to_hex41(value["to_address"])))
            + _int_field(3, _int(value.get("amount", 0), "amount"))
        )
    return (
        _bytes_field(1, owner)
        + _bytes_field(2, bytes.fromhex(to_hex41(value["contract_address"])))
        + _int_field(3, _int(value.get("call_value", 0), "call_value"))
        + _bytes_field(4, unhex(value.get("data", ""), "data"))
        + _int_field(5, _int(value.get("call_token_value", 0), "call_token_value"))
        + _int_field(6, _int(value.get("token_id", 0), "token_id"))
    )


def _encode_contract(contract: Mapping[str, Any]) -> bytes:
    kind = contract.get("type")
    if kind not in CONTRACT_TYPES:
        raise EncodingError(f"contract type {kind!r} is not supported by the devnet")
    parameter = contract["parameter"]
    any_message = _bytes_field(1, str(parameter["type_url"]).encode()) + _bytes_field(
        2, _encode_parameter(kind, parameter["value"])
    )
    return (
        _int_field(1, CONTRACT_TYPES[kind])
        + _bytes_field(2, any_message, always=True)
        + _int_field(5, _int(contract.get("Permission_id", 0), "Permission_id"))
    )


def encode_raw_data(raw: Mapping[str, Any]) -> bytes:
    """The protobuf `Transaction.raw` bytes of a `raw_data` JSON object (hex form)."""
    try:
        contracts = raw["contract"]
        if not isinstance(contracts, list) or len(contracts) != 1:
            raise EncodingError("raw_data.contract must hold exactly one contract")
        return (
            _bytes_field(1, unhex(raw["ref_block_bytes"], "ref_block_bytes"))
            + _int_field(3, _int(raw.get("ref_block_num", 0), "ref_block_num"))
            + _bytes_field(4, unhex(raw["ref_block_hash"], "ref_block_hash"))
            + _int_field(8, _int(raw["expiration"], "expiration"))
            + _bytes_field(10, unhex(raw.get("data", ""), "data"))
            + b"".join(_bytes_field(11, _encode_contract(c), always=True) for c in contracts)
            + _int_field(14, _int(raw.get("timestamp", 0), "timestamp"))
            + _int_field(18, _int(raw.get("fee_limit", 0), "fee_limit"))
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise EncodingError(f"raw_data is incomplete: {exc!r}") from exc


def encode_block_header(
    number: int, timestamp: int, tx_trie_root: str, parent_id: str, witness: Hex41, version: int
) -> bytes:
    """The protobuf `BlockHeader.raw` bytes, whose sha256 gives the block id's hash part."""
    return (
        _int_field(1, timestamp)
        + _bytes_field(2, bytes.fromhex(tx_trie_root))
        + _bytes_field(3, bytes.fromhex(parent_id))
        + _int_field(7, number)
        + _bytes_field(9, bytes.fromhex(witness))
        + _int_field(10, version)
    )


def txid_of(raw_bytes: bytes) -> str:
    return hashlib.sha256(raw_bytes).hexdigest()


def transaction_size(raw_bytes: bytes, signatures: Sequence[str]) -> int:
    """Serialized size of the signed `Transaction` (raw + signatures, no `ret`), which is
    what java-tron charges bandwidth for."""
    size = len(_bytes_field(1, raw_bytes, always=True))
    for signature in signatures:
        size += len(_bytes_field(2, bytes.fromhex(signature), always=True))
    return size


# --- signatures -----------------------------------------------------------------------------


def recover_signer(txid: str, signature_hex: str) -> Hex41 | None:
    """The address whose key made this 65-byte `r||s||v` signature over the txID, or None
    when the signature is malformed. v may be 0/1 or 27/28 (TronWeb style)."""
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        return None
    if len(signature) != 65:
        return None
    v = signature[64] - 27 if signature[64] >= 27 else signature[64]
    try:
        parsed = Signature(signature_bytes=signature[:64] + bytes([v]))
        public_key = parsed.recover_public_key_from_msg_hash(bytes.fromhex(txid))
    except (BadSignature, ValidationError, ValueError):
        return None
    return address_from_public_key(public_key)


def sign_txid(txid: str, private_key_hex: str) -> str:
    key = PrivateKey(bytes.fromhex(private_key_hex))
    return key.sign_msg_hash(bytes.fromhex(txid)).to_bytes().hex()


# --- ABI words ------------------------------------------------------------------------------


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def address_word(address: Hex41) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])
