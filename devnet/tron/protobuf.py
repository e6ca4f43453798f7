"""Reading a serialized `protocol.Transaction` (what `/wallet/broadcasthex` receives) back
into the devnet's `raw_data` JSON, with the field numbers of java-tron's core/Tron.proto
and core/contract/*.proto:

    Transaction      {raw raw_data = 1; repeated bytes signature = 2; repeated Result ret = 5}
    Transaction.raw  {ref_block_bytes = 1; ref_block_num = 3; ref_block_hash = 4;
                      expiration = 8; data = 10; repeated Contract contract = 11;
                      timestamp = 14; fee_limit = 18}
    Contract         {ContractType type = 1; google.protobuf.Any parameter = 2;
                      Permission_id = 5}   (Any: type_url = 1, value = 2)

java-tron hashes the raw_data it re-serializes from the parsed message, so the devnet does
the same: the decoded JSON goes through `encode_raw_data` again and the txID is the sha256
of that. A field java-tron would keep as unknown (auths, scripts, a contract the devnet
does not run) is refused here rather than silently dropped from the hash.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from devnet.tron.encoding import CONTRACT_NAMES, RESOURCE_NAMES, EncodingError

Fields = dict[int, list[int | bytes]]


class ProtobufError(EncodingError):
    """Bytes that are not a valid protobuf message at all (java-tron:
    InvalidProtocolBufferException), as opposed to a message the devnet does not run."""


_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_RAW_INTS = {3: "ref_block_num", 8: "expiration", 14: "timestamp", 18: "fee_limit"}
_RAW_BYTES = {1: "ref_block_bytes", 4: "ref_block_hash", 10: "data"}
# Per contract: field number → (JSON name, kind) with kind address | int | bytes | resource | bool.
_PARAMETERS: dict[str, dict[int, tuple[str, str]]] = {
    "TransferContract": {1: ("owner_address", "address"), 2: ("to_address", "address"),
                         3: ("amount", "int")},
    "TriggerSmartContract": {1: ("owner_address", "address"), 2: ("contract_address", "address"),
                             3: ("call_value", "int"), 4: ("data", "bytes"),
                             5: ("call_token_value", "int"), 6: ("token_id", "int")},
    "FreezeBalanceV2Contract": {1: ("owner_address", "address"), 2: ("frozen_balance", "int"),
                                3: ("resource", "resource")},
    "UnfreezeBalanceV2Contract": {1: ("owner_address", "address"),
                                  2: ("unfreeze_balance", "int"), 3: ("resource", "resource")},
    "DelegateResourceContract": {1: ("owner_address", "address"), 2: ("resource", "resource"),
                                 3: ("balance", "int"), 4: ("receiver_address", "address"),
                                 5: ("lock", "bool"), 6: ("lock_period", "int")},
    "UnDelegateResourceContract": {1: ("owner_address", "address"), 2: ("resource", "resource"),
                                   3: ("balance", "int"), 4: ("receiver_address", "address")},
}  # fmt: skip


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ProtobufError("truncated or oversized varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
            yield number, value
        elif wire == _LEN:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated length-delimited field")
            yield number, data[pos : pos + length]
            pos += length
        elif wire in (_I64, _I32):
            width = 8 if wire == _I64 else 4
            if pos + width > len(data):
                raise ProtobufError("truncated fixed-width field")
            yield number, int.from_bytes(data[pos : pos + width], "little")
            pos += width
        else:
            raise ProtobufError(f"unsupported wire type {wire}")


def parse(data: bytes) -> Fields:
    out: Fields = {}
    for number, value in _fields(data):
        out.setdefault(number, []).append(value)
    return out


def _one(fields: Fields, number: int, kind: type[int] | type[bytes], where: str) -> Any:
    values = fields.get(number)
    if not values:
        return None
    value = values[-1]  # protobuf: the last occurrence of a singular field wins
    if not isinstance(value, kind):
        raise ProtobufError(f"{where}: field {number} has the wrong wire type")
    return value


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _check_known(fields: Fields, known: set[int], where: str) -> None:
    unknown = sorted(set(fields) - known)
    if unknown:
        raise EncodingError(f"{where}: fields {unknown} are not supported by the devnet")


def _decode_value(kind: str, data: bytes) -> dict[str, Any]:
    spec = _PARAMETERS[kind]
    fields = parse(data)
    _check_known(fields, set(spec), kind)
    value: dict[str, Any] = {}
    for number, (name, what) in spec.items():
        raw = _one(fields, number, bytes if what in ("address", "bytes") else int, kind)
        if raw is None:
            continue
        if what == "address" or what == "bytes":
            value[name] = raw.hex()
        elif what == "resource":
            if raw not in RESOURCE_NAMES:
                raise EncodingError(f"{kind}: resource {raw} is not a ResourceCode")
            value[name] = RESOURCE_NAMES[raw]
        elif what == "bool":
            value[name] = bool(raw)
        else:
            value[name] = _int64(raw)
    return value


def _decode_contract(data: bytes) -> dict[str, Any]:
    fields = parse(data)
    _check_known(fields, {1, 2, 5}, "contract")
    number = _one(fields, 1, int, "contract") or 0
    kind = CONTRACT_NAMES.get(number)
    if kind is None:
        raise EncodingError(f"contract type {number} is not supported by the devnet")
    any_fields = parse(_one(fields, 2, bytes, "contract") or b"")
    _check_known(any_fields, {1, 2}, "contract.parameter")
    type_url = (_one(any_fields, 1, bytes, "parameter") or b"").decode("utf-8", "replace")
    value = _decode_value(kind, _one(any_fields, 2, bytes, "parameter") or b"")
    contract: dict[str, Any] = {"parameter": {"value": value, "type_url": type_url}, "type": kind}
    permission = _one(fields, 5, int, "contract")
    if permission:
        contract["Permission_id"] = permission
    return contract


def decode_transaction(data: bytes) -> tuple[dict[str, Any], tuple[str, ...]]:
    """`(raw_data, signatures)` of a serialized Transaction; `raw_data` in the hex form
    that `transactions.normalize_raw(…, visible=False)` accepts."""
    fields = parse(data)
    _check_known(fields, {1, 2, 5}, "Transaction")
    signatures = []
    for signature in fields.get(2, []):
        if not isinstance(signature, bytes):
            raise EncodingError("Transaction: signature has the wrong wire type")
        signatures.append(signature.hex())
    raw_fields = parse(_one(fields, 1, bytes, "Transaction") or b"")
    _check_known(raw_fields, {*_RAW_INTS, *_RAW_BYTES, 11}, "Transaction.raw")
    raw: dict[str, Any] = {}
    contracts = []
    for contract in raw_fields.get(11, []):
        if not isinstance(contract, bytes):
            raise EncodingError("Transaction.raw: contract has the wrong wire type")
        contracts.append(_decode_contract(contract))
    raw["contract"] = contracts
    for number, name in _RAW_BYTES.items():
        value = _one(raw_fields, number, bytes, "Transaction.raw")
        if value:
            raw[name] = value.hex()
    for number, name in _RAW_INTS.items():
        value = _one(raw_fields, number, int, "Transaction.raw")
        if value:
            raw[name] = _int64(value)
    return raw, tuple(signatures)
