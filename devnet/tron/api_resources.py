"""The java-tron endpoints of Stake 2.0 and of raw broadcast: the builders
`freezebalancev2`, `unfreezebalancev2`, `delegateresource`, `undelegateresource` (unsigned
transactions shaped like `createtransaction`'s, or `{"Error": "class
org.tron.core.exception.ContractValidateException : <msg>"}`), the queries
`getdelegatedresourcev2`, `getdelegatedresourceaccountindexv2`, `getcandelegatedmaxsize`,
and `broadcasthex`, which takes a serialized `protocol.Transaction` (what an offline
signer produces) and answers as documented in documentation-en's broadcasthex.md.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from devnet.tron.api import ApiRequest, endpoint, int_arg, node_built
from devnet.tron.chain import BroadcastError
from devnet.tron.encoding import RESOURCE_NAMES, parse_address, resource_code
from devnet.tron.encoding import show_address as show
from devnet.tron.ledger import ContractValidateError
from devnet.tron.protobuf import ProtobufError, decode_transaction
from devnet.tron.render import java_error
from devnet.tron.resources import delegatable
from devnet.tron.transactions import SignedTx, normalize_raw, show_raw

VALIDATE_EXCEPTION = "org.tron.core.exception.ContractValidateException"


def _resource(req: ApiRequest) -> str:
    return RESOURCE_NAMES[resource_code(req.body.get("resource"))]


def _built(req: ApiRequest, kind: str, value: dict[str, Any]) -> Any:
    tx = node_built(req.chain, kind, value)
    try:
        req.chain.executor.validate(req.chain.ledger(), tx.call, req.chain.clock())
    except ContractValidateError as exc:
        return java_error(VALIDATE_EXCEPTION, str(exc))
    return tx.unsigned_json(req.visible)


def _owner(req: ApiRequest) -> str:
    return parse_address(req.body.get("owner_address"), req.visible)


def _receiver(req: ApiRequest) -> str:
    return parse_address(req.body.get("receiver_address"), req.visible)


@endpoint("freezebalancev2")
def freeze_balance_v2(req: ApiRequest) -> Any:
    value = {
        "owner_address": _owner(req),
        "frozen_balance": int_arg(req.body, "frozen_balance"),
        "resource": _resource(req),
    }
    return _built(req, "FreezeBalanceV2Contract", value)


@endpoint("unfreezebalancev2")
def unfreeze_balance_v2(req: ApiRequest) -> Any:
    value = {
        "owner_address": _owner(req),
        "unfreeze_balance": int_arg(req.body, "unfreeze_balance"),
        "resource": _resource(req),
    }
    return _built(req, "UnfreezeBalanceV2Contract", value)


@endpoint("delegateresource")
def delegate_resource(req: ApiRequest) -> Any:
    value: dict[str, Any] = {
        "owner_address": _owner(req),
        "resource": _resource(req),
        "balance": int_arg(req.body, "balance"),
        "receiver_address": _receiver(req),
    }
    if req.body.get("lock") in (True, "true"):
        value["lock"] = True
        value["lock_period"] = int_arg(req.body, "lock_period", 0)
    return _built(req, "DelegateResourceContract", value)


@endpoint("undelegateresource")
def undelegate_resource(req: ApiRequest) -> Any:
    value = {
        "owner_address": _owner(req),
        "resource": _resource(req),
        "balance": int_arg(req.body, "balance"),
        "receiver_address": _receiver(req),
    }
    return _built(req, "UnDelegateResourceContract", value)


# --- queries --------------------------------------------------------------------------------


@endpoint("getdelegatedresourcev2", solidity=True)
def get_delegated_resource_v2(req: ApiRequest) -> Any:
    source = parse_address(req.body.get("fromAddress"), req.visible)
    to = parse_address(req.body.get("toAddress"), req.visible)
    delegations = req.chain.ledger(req.solid).delegations
    found = []
    for locked in (False, True):  # the unlocked record first, as java-tron lists them
        record = delegations.get((source, to, locked))
        if record is None or record.empty:
            continue
        entry: dict[str, Any] = {"from": show(source, req.visible), "to": show(to, req.visible)}
        fields = {
            "frozen_balance_for_bandwidth": record.bandwidth,
            "frozen_balance_for_energy": record.energy,
            "expire_time_for_bandwidth": record.expire_time_for_bandwidth,
            "expire_time_for_energy": record.expire_time_for_energy,
        }
        entry.update({name: value for name, value in fields.items() if value})
        found.append(entry)
    return {"delegatedResource": found} if found else {}


@endpoint("getdelegatedresourceaccountindexv2", solidity=True)
def get_delegated_resource_account_index_v2(req: ApiRequest) -> Any:
    address = parse_address(req.body.get("value"), req.visible)
    delegations = req.chain.ledger(req.solid).delegations
    sources = sorted({f for (f, t, _), r in delegations.items() if t == address and not r.empty})
    receivers = sorted({t for (f, t, _), r in delegations.items() if f == address and not r.empty})
    out: dict[str, Any] = {"account": show(address, req.visible)}
    if sources:
        out["fromAccounts"] = [show(a, req.visible) for a in sources]
    if receivers:
        out["toAccounts"] = [show(a, req.visible) for a in receivers]
    return out


@endpoint("getcandelegatedmaxsize", solidity=True)
def get_can_delegated_max_size(req: ApiRequest) -> Any:
    owner = _owner(req)
    ledger = req.chain.ledger(req.solid)
    account = ledger.accounts.get(owner)
    resource = RESOURCE_NAMES[resource_code(int_arg(req.body, "type", 0))]
    if account is None or resource not in ("BANDWIDTH", "ENERGY"):
        return {}
    size = delegatable(ledger, account, resource, req.chain.executor.params, req.chain.clock())
    return {"max_size": size} if size else {}


# --- broadcasthex ---------------------------------------------------------------------------


@endpoint("broadcasthex")
def broadcast_hex(req: ApiRequest) -> Any:
    given = req.body.get("transaction")
    if given is None or given == "":
        # documented: an empty Transaction reaches the broadcast and has no contract
        return {
            "result": False,
            "code": "CONTRACT_VALIDATE_ERROR",
            "message": "Contract validate error : No contract!",
            "transaction": "{}",
            "txid": hashlib.sha256(b"").hexdigest(),
        }
    if not isinstance(given, str):
        return java_error("org.bouncycastle.util.encoders.DecoderException", repr(given))
    try:
        data = bytes.fromhex(given)
    except ValueError as exc:
        return java_error("org.bouncycastle.util.encoders.DecoderException", str(exc))
    try:
        raw, signatures = decode_transaction(data)
    except ProtobufError as exc:
        return java_error("com.google.protobuf.InvalidProtocolBufferException", str(exc))
    tx = SignedTx.from_raw(normalize_raw(raw, visible=False), signatures)
    printed = json.dumps({"raw_data": show_raw(tx.raw, True), "signature": list(signatures)})
    answer: dict[str, Any] = {"result": True, "code": "SUCCESS", "message": ""}
    try:
        req.chain.broadcast(tx)
    except BroadcastError as exc:
        answer = {"result": False, "code": exc.code, "message": exc.message}
    return {**answer, "transaction": printed, "txid": tx.txid}
