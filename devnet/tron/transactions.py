"""Transactions as the devnet keeps them: `raw_data` normalized to hex addresses and
java-tron's field order (zero values left out, as protobuf JSON does), with the txID
computed from the protobuf bytes, never taken from the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devnet.tron.encoding import (
    ADDRESS_FIELDS,
    CONTRACT_TYPES,
    RESOURCE_NAMES,
    TYPE_URL,
    EncodingError,
    encode_raw_data,
    parse_address,
    resource_code,
    show_address,
    transaction_size,
    txid_of,
)
from devnet.tron.ledger import MAX_RESULT_SIZE_IN_TX, Call

EXPIRATION_MS = 60_000  # java-tron's default lifetime of a transaction it builds

_VALUE_FIELDS = {
    "TransferContract": ("amount", "owner_address", "to_address"),
    "TriggerSmartContract": (
        "data",
        "owner_address",
        "contract_address",
        "call_value",
        "call_token_value",
        "token_id",
    ),
    "FreezeBalanceV2Contract": ("owner_address", "frozen_balance", "resource"),
    "UnfreezeBalanceV2Contract": ("owner_address", "unfreeze_balance", "resource"),
    "DelegateResourceContract": (
        "owner_address",
        "resource",
        "balance",
        "receiver_address",
        "lock",
        "lock_period",
    ),
    "UnDelegateResourceContract": ("owner_address", "resource", "balance", "receiver_address"),
}
_RAW_FIELDS = (
    "ref_block_bytes",
    "ref_block_num",
    "ref_block_hash",
    "expiration",
    "data",
    "fee_limit",
    "timestamp",
)


def normalize_raw(raw: Mapping[str, Any], visible: bool) -> dict[str, Any]:
    """`raw_data` from a request, with addresses parsed per `visible` and stored as hex."""
    try:
        contracts = raw["contract"]
        if not isinstance(contracts, list) or len(contracts) != 1:
            raise EncodingError("raw_data.contract must hold exactly one contract")
        out: dict[str, Any] = {"contract": [_normalize_contract(contracts[0], visible)]}
        for name in _RAW_FIELDS:
            if raw.get(name):
                out[name] = raw[name]
    except (KeyError, TypeError, AttributeError) as exc:
        raise EncodingError(f"raw_data is incomplete: {exc!r}") from exc
    return out


def _normalize_contract(contract: Mapping[str, Any], visible: bool) -> dict[str, Any]:
    kind = contract["type"]
    if kind not in CONTRACT_TYPES:
        raise EncodingError(f"contract type {kind!r} is not supported by the devnet")
    given = contract["parameter"]["value"]
    value: dict[str, Any] = {}
    for name in _VALUE_FIELDS[kind]:
        if not given.get(name) or (name == "resource" and given[name] in ("BANDWIDTH", 0)):
            continue  # protobuf JSON leaves out default values, BANDWIDTH among them
        if name in ADDRESS_FIELDS:
            value[name] = parse_address(given[name], visible)
        elif name == "resource":
            value[name] = RESOURCE_NAMES[resource_code(given[name])]
        else:
            value[name] = given[name]
    out: dict[str, Any] = {
        "parameter": {"value": value, "type_url": contract["parameter"]["type_url"]},
        "type": kind,
    }
    if contract.get("Permission_id"):
        out["Permission_id"] = contract["Permission_id"]
    return out


def show_raw(raw: Mapping[str, Any], visible: bool) -> dict[str, Any]:
    """`raw_data` for a response: addresses base58 when `visible`."""
    contract = raw["contract"][0]
    value = {
        name: show_address(v, visible) if name in ADDRESS_FIELDS else v
        for name, v in contract["parameter"]["value"].items()
    }
    shown = {**contract, "parameter": {**contract["parameter"], "value": value}}
    return {**raw, "contract": [shown]}


def new_raw(
    kind: str,
    value: dict[str, Any],
    ref_block_id: str,
    head_timestamp: int,
    now_ms: int,
    fee_limit: int = 0,
) -> dict[str, Any]:
    """A `raw_data` the node builds (createtransaction, triggersmartcontract): ref block and
    expiration from the head block, as java-tron does."""
    raw: dict[str, Any] = {
        "contract": [
            {"parameter": {"value": value, "type_url": TYPE_URL.format(kind)}, "type": kind}
        ],
        "ref_block_bytes": ref_block_id[12:16],
        "ref_block_hash": ref_block_id[16:32],
        "expiration": head_timestamp + EXPIRATION_MS,
        "timestamp": now_ms,
    }
    if fee_limit:
        raw["fee_limit"] = fee_limit
    return normalize_raw(raw, visible=False)


@dataclass(frozen=True)
class SignedTx:
    txid: str
    raw: dict[str, Any]  # normalized, hex addresses
    raw_hex: str
    signatures: tuple[str, ...]
    call: Call
    size: int  # bytes of bandwidth it costs

    @property
    def expiration(self) -> int:
        return int(self.raw["expiration"])

    @classmethod
    def from_raw(cls, raw: dict[str, Any], signatures: tuple[str, ...] = ()) -> SignedTx:
        raw_bytes = encode_raw_data(raw)
        try:
            call = Call.from_raw(raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise EncodingError(f"contract parameter is invalid: {exc!r}") from exc
        size = transaction_size(raw_bytes, signatures) + MAX_RESULT_SIZE_IN_TX
        return cls(txid_of(raw_bytes), raw, raw_bytes.hex(), signatures, call, size)

    @classmethod
    def from_request(cls, body: Mapping[str, Any], visible: bool) -> SignedTx:
        """A transaction JSON as clients post it to broadcasttransaction/getsignweight."""
        raw_data = body.get("raw_data")
        if not isinstance(raw_data, Mapping):
            raise EncodingError("raw_data is missing")
        signatures = body.get("signature") or []
        if not isinstance(signatures, list) or not all(isinstance(s, str) for s in signatures):
            raise EncodingError("signature must be a list of hex strings")
        return cls.from_raw(normalize_raw(raw_data, visible), tuple(signatures))

    def with_signature(self, signature: str) -> SignedTx:
        return SignedTx.from_raw(self.raw, (*self.signatures, signature))

    def unsigned_json(self, visible: bool) -> dict[str, Any]:
        """The shape node-built transactions come back in (triggersmartcontract & co)."""
        return {
            "visible": visible,
            "txID": self.txid,
            "raw_data": show_raw(self.raw, visible),
            "raw_data_hex": self.raw_hex,
        }

    def signed_json(self, contract_ret: str | None, visible: bool) -> dict[str, Any]:
        """The shape of gettransactionbyid and of a block's `transactions[]`."""
        out: dict[str, Any] = {}
        if contract_ret is not None:
            out["ret"] = [{"contractRet": contract_ret}]
        out["signature"] = list(self.signatures)
        out["txID"] = self.txid
        out["raw_data"] = show_raw(self.raw, visible)
        out["raw_data_hex"] = self.raw_hex
        return out
