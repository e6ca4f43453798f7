"""The java-tron HTTP endpoints (`/wallet/*`, and the read-only ones under
`/walletsolidity/*`, which answer from the solid block) and their quirks: HTTP 200 with an
`Error` body for business errors, `{}` for a missing item, `visible` read from the body
(or the query of a GET) except for `getnowblock`, which reads only the query string.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devnet.tron.chain import BroadcastError, Chain
from devnet.tron.encoding import (
    ZERO_ADDRESS,
    EncodingError,
    Hex41,
    parse_address,
    recover_signer,
    selector,
    show_address,
    to_base58,
    unhex,
)
from devnet.tron.ledger import ContractValidateError, chain_parameters
from devnet.tron.render import (
    account_json,
    account_resource_json,
    active_permission,
    block_json,
    info_json,
    java_error,
    node_info_json,
    owner_permission,
    text,
)
from devnet.tron.resources import price_history
from devnet.tron.tokens import trc20_abi
from devnet.tron.transactions import SignedTx, new_raw

MAX_BLOCK_RANGE = 100


@dataclass(frozen=True)
class ApiRequest:
    chain: Chain
    body: Mapping[str, Any]
    visible: bool
    query_visible: bool  # what getnowblock reads
    solid: bool  # under /walletsolidity


Handler = Callable[[ApiRequest], Any]
WALLET: dict[str, Handler] = {}
SOLIDITY: dict[str, Handler] = {}


def endpoint(name: str, *, solidity: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        WALLET[name] = handler
        if solidity:
            SOLIDITY[name] = handler
        return handler

    return register


def int_arg(body: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = body.get(name, default)
    if value is None:
        raise EncodingError(f"{name} is required")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise EncodingError(f"{name} is not a number: {value!r}") from exc


def _str_arg(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise EncodingError(f"{name} is required")
    return value


# --- blocks ---------------------------------------------------------------------------------


@endpoint("getnowblock", solidity=True)
def get_now_block(req: ApiRequest) -> Any:
    return block_json(req.chain.top(req.solid), req.query_visible)


@endpoint("getblockbynum", solidity=True)
def get_block_by_num(req: ApiRequest) -> Any:
    block = req.chain.block(int_arg(req.body, "num"), req.solid)
    return {} if block is None else block_json(block, req.visible)


@endpoint("getblockbyid", solidity=True)
def get_block_by_id(req: ApiRequest) -> Any:
    block = req.chain.block_by_id(_str_arg(req.body, "value"), req.solid)
    return {} if block is None else block_json(block, req.visible)


@endpoint("getblockbylimitnext", solidity=True)
def get_block_by_limit_next(req: ApiRequest) -> Any:
    start, end = int_arg(req.body, "startNum"), int_arg(req.body, "endNum")
    if start < 0 or end <= start or end - start > MAX_BLOCK_RANGE:
        return {}
    blocks = [req.chain.block(n, req.solid) for n in range(start, end)]
    found = [block_json(b, req.visible) for b in blocks if b is not None]
    return {"block": found} if found else {}


@endpoint("getblockbylatestnum", solidity=True)
def get_block_by_latest_num(req: ApiRequest) -> Any:
    count = int_arg(req.body, "num")
    if count <= 0 or count > MAX_BLOCK_RANGE:
        return {}
    top = req.chain.top(req.solid).number
    start = max(0, top - count + 1)
    return {"block": [block_json(req.chain.blocks[n], req.visible) for n in range(start, top + 1)]}


# --- transactions ---------------------------------------------------------------------------


@endpoint("gettransactionbyid", solidity=True)
def get_transaction_by_id(req: ApiRequest) -> Any:
    found = req.chain.locate(_str_arg(req.body, "value"), req.solid)
    if found is None:
        return {}
    _, entry = found
    return entry.tx.signed_json(entry.receipt.result, req.visible)


@endpoint("gettransactioninfobyid", solidity=True)
def get_transaction_info_by_id(req: ApiRequest) -> Any:
    found = req.chain.locate(_str_arg(req.body, "value"), req.solid)
    return {} if found is None else info_json(*found, req.visible)


@endpoint("gettransactioninfobyblocknum", solidity=True)
def get_transaction_info_by_block_num(req: ApiRequest) -> Any:
    number = int_arg(req.body, "num")
    block = req.chain.block(number, req.solid) if number > 0 else None
    if block is None:
        # `{}` for num <= 0 as the node answers; also for a block beyond the head, so a
        # client can never mistake a block that does not exist yet for an empty one.
        return {}
    return [info_json(block, entry, req.visible) for entry in block.entries]


@endpoint("broadcasttransaction")
def broadcast_transaction(req: ApiRequest) -> Any:
    tx = SignedTx.from_request(req.body, req.visible)
    try:
        req.chain.broadcast(tx)
    except BroadcastError as exc:
        message = text(exc.message, req.visible)
        return {"result": False, "code": exc.code, "message": message, "txid": tx.txid}
    return {"result": True, "code": "SUCCESS", "txid": tx.txid}


@endpoint("getsignweight")
def get_sign_weight(req: ApiRequest) -> Any:
    tx = SignedTx.from_request(req.body, req.visible)
    owner = tx.call.owner
    approved = [s for s in (recover_signer(tx.txid, sig) for sig in tx.signatures) if s]
    out: dict[str, Any] = {}
    if owner in req.chain.ledger().accounts:
        active = tx.raw["contract"][0].get("Permission_id") == 2
        permission = active_permission if active else owner_permission
        out["permission"] = permission(owner, req.visible)
        out["permission"].pop("operations", None)  # absent in the captured answer
        weight = sum(1 for signer in approved if signer == owner)
        if weight:
            out["current_weight"] = weight
        if approved:
            out["approved_list"] = [show_address(a, req.visible) for a in approved]
        out["result"] = {"code": "ENOUGH_PERMISSION" if weight else "NOT_ENOUGH_PERMISSION"}
    else:
        message = f"Account [{to_base58(owner)}] does not exist"
        out["result"] = {"code": "PERMISSION_ERROR", "message": text(message, req.visible)}
    unsigned = tx.unsigned_json(req.visible)
    del unsigned["visible"]
    out["transaction"] = {"txid": tx.txid, "transaction": unsigned}
    return out


@endpoint("createtransaction")
def create_transaction(req: ApiRequest) -> Any:
    value = {
        "amount": int_arg(req.body, "amount"),
        "owner_address": parse_address(req.body.get("owner_address"), req.visible),
        "to_address": parse_address(req.body.get("to_address"), req.visible),
    }
    tx = node_built(req.chain, "TransferContract", value)
    try:
        req.chain.executor.validate(req.chain.ledger(), tx.call, req.chain.clock())
    except ContractValidateError as exc:
        return java_error("org.tron.core.exception.ContractValidateException", str(exc))
    return tx.unsigned_json(req.visible)


def node_built(chain: Chain, kind: str, value: dict[str, Any], fee_limit: int = 0) -> SignedTx:
    head = chain.head
    raw = new_raw(kind, value, head.block_id, head.timestamp, chain.clock(), fee_limit)
    return SignedTx.from_raw(raw)


# --- contracts ------------------------------------------------------------------------------


def _call_data(body: Mapping[str, Any]) -> bytes:
    if body.get("data"):
        return unhex(body["data"], "data")
    signature = _str_arg(body, "function_selector").replace(" ", "")
    return selector(signature) + unhex(body.get("parameter", ""), "parameter")


def _trigger_tx(req: ApiRequest, fee_limit: int = 0) -> SignedTx:
    owner = req.body.get("owner_address")
    value: dict[str, Any] = {
        "data": _call_data(req.body).hex(),
        "owner_address": parse_address(owner, req.visible) if owner else ZERO_ADDRESS,
        "contract_address": parse_address(req.body.get("contract_address"), req.visible),
    }
    if req.body.get("call_value"):
        value["call_value"] = int_arg(req.body, "call_value")
    return node_built(req.chain, "TriggerSmartContract", value, fee_limit)


def _contract_error(message: str, visible: bool) -> dict[str, Any]:
    return {"result": {"code": "CONTRACT_VALIDATE_ERROR", "message": text(message, visible)}}


@endpoint("triggerconstantcontract", solidity=True)
def trigger_constant_contract(req: ApiRequest) -> Any:
    tx = _trigger_tx(req)
    call = tx.call
    if call.target not in req.chain.executor.tokens:
        return _contract_error("Smart contract is not exist.", req.visible)
    outcome = req.chain.executor.constant_call(
        req.chain.ledger(req.solid), call.owner, call.target, call.data
    )
    result: dict[str, Any] = {"result": True}
    ret: dict[str, str] = {}
    if outcome.status != "SUCCESS":
        result["message"] = text("REVERT opcode executed", req.visible)
        ret = {"ret": "FAILED"}
    transaction = {"ret": [ret], **tx.unsigned_json(req.visible)}
    return {
        "result": result,
        "energy_used": outcome.energy,
        "constant_result": [outcome.output.hex()],
        "transaction": transaction,
    }


@endpoint("estimateenergy", solidity=True)
def estimate_energy(req: ApiRequest) -> Any:
    answer = trigger_constant_contract(req)
    if "energy_used" not in answer:
        return answer
    if "message" in answer["result"]:
        return {"result": answer["result"]}
    return {"result": {"result": True}, "energy_required": answer["energy_used"]}


@endpoint("triggersmartcontract")
def trigger_smart_contract(req: ApiRequest) -> Any:
    # The node's default fee_limit is 0, which runs out of energy at once (chains.md §3.3).
    tx = _trigger_tx(req, fee_limit=int_arg(req.body, "fee_limit", 0))
    try:
        req.chain.executor.validate(req.chain.ledger(), tx.call, req.chain.clock())
    except ContractValidateError as exc:
        return _contract_error(str(exc), req.visible)
    return {"result": {"result": True}, "transaction": tx.unsigned_json(req.visible)}


@endpoint("getcontract", solidity=True)
def get_contract(req: ApiRequest) -> Any:
    address = parse_address(req.body.get("value"), req.visible)
    spec = req.chain.executor.tokens.get(address)
    if spec is None:
        return {}
    return {
        "origin_address": show_address(req.chain.witness, req.visible),
        "contract_address": show_address(spec.address, req.visible),
        "abi": {"entrys": trc20_abi()},
        "bytecode": "",
        "consume_user_resource_percent": 30,
        "name": spec.contract_name,
        "origin_energy_limit": 10_000_000,
    }


# --- accounts and parameters ----------------------------------------------------------------


def account_address(req: ApiRequest) -> Hex41:
    return parse_address(req.body.get("address"), req.visible)


@endpoint("getaccount", solidity=True)
def get_account(req: ApiRequest) -> Any:
    address = account_address(req)
    account = req.chain.ledger(req.solid).accounts.get(address)
    return {} if account is None else account_json(address, account, req.visible)


@endpoint("getaccountresource")
def get_account_resource(req: ApiRequest) -> Any:
    ledger = req.chain.ledger()
    account = ledger.accounts.get(account_address(req))
    if account is None:
        return {}
    return account_resource_json(account, ledger, req.chain.executor.params, req.chain.clock())


@endpoint("getaccountnet")
def get_account_net(req: ApiRequest) -> Any:
    answer = get_account_resource(req)
    return {k: v for k, v in answer.items() if "Energy" not in k}


@endpoint("getnodeinfo")
def get_node_info(req: ApiRequest) -> Any:
    return node_info_json(req.chain)


@endpoint("getchainparameters")
def get_chain_parameters(req: ApiRequest) -> Any:
    parameters = chain_parameters(req.chain.executor.params)
    return {"chainParameter": [{"key": k, "value": v} for k, v in parameters.items()]}


@endpoint("getenergyprices", solidity=True)
def get_energy_prices(req: ApiRequest) -> Any:
    return {"prices": price_history(req.chain.executor.params.energy_prices)}


@endpoint("getbandwidthprices", solidity=True)
def get_bandwidth_prices(req: ApiRequest) -> Any:
    return {"prices": price_history(req.chain.executor.params.bandwidth_prices)}


def handle(req: ApiRequest, name: str) -> Any | None:
    """The JSON answer of endpoint `name`, or None when there is no such endpoint."""
    handler = (SOLIDITY if req.solid else WALLET).get(name)
    if handler is None:
        return None
    try:
        return handler(req)
    except EncodingError as exc:
        return java_error("java.lang.IllegalArgumentException", str(exc))
