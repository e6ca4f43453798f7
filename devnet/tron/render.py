"""JSON shapes of java-tron's HTTP API, from the devnet's blocks, receipts and accounts.

Field names and order follow the real captures in chains.md §3.3. As protobuf JSON does,
zero and empty values are left out (an empty block has no `transactions` key, a receipt
paid from free bandwidth has no `fee`). `visible=true` turns addresses into base58,
including `log[].address`; topics and data stay hex.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from devnet.tron.chain import Block, Chain, Entry
from devnet.tron.encoding import Hex41, show_address
from devnet.tron.ledger import FREE_NET_LIMIT, Account, Ledger
from devnet.tron.resources import (
    NetworkParams,
    energy_limit,
    energy_used,
    net_limit,
    net_used,
    total_energy_weight,
    total_net_weight,
)

ACTIVE_OPERATIONS = "7fff1fc0033efb0f000000000000000000000000000000000000000000000000"
# Protobuf field order of ResourceReceipt, which the JSON keeps.
_RECEIPT_FIELDS = ("energy_usage", "energy_fee", "energy_usage_total", "net_usage", "net_fee")


def java_error(exception: str, message: str) -> dict[str, str]:
    """The body of a failed call: HTTP 200 with `Error`, as java-tron answers."""
    return {"Error": f"class {exception} : {message}"}


def text(message: str, visible: bool) -> str:
    """A protobuf `bytes` text field: hex unless `visible`."""
    return message if visible else message.encode().hex()


def block_json(block: Block, visible: bool) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if block.number:
        raw["number"] = block.number
    raw["txTrieRoot"] = block.tx_trie_root
    raw["witness_address"] = show_address(block.witness, visible)
    raw["parentHash"] = block.parent_id
    raw["version"] = 34
    raw["timestamp"] = block.timestamp
    out: dict[str, Any] = {
        "blockID": block.block_id,
        "block_header": {"raw_data": raw, "witness_signature": block.witness_signature},
    }
    if block.entries:
        out["transactions"] = [e.tx.signed_json(contract_ret(e), visible) for e in block.entries]
    return out


def contract_ret(entry: Entry) -> str:
    return entry.receipt.result


def info_json(block: Block, entry: Entry, visible: bool) -> dict[str, Any]:
    """gettransactioninfobyid / an element of gettransactioninfobyblocknum."""
    receipt = entry.receipt
    out: dict[str, Any] = {"id": entry.tx.txid}
    if receipt.fee:
        out["fee"] = receipt.fee
    out["blockNumber"] = block.number
    out["blockTimeStamp"] = block.timestamp
    out["contractResult"] = [receipt.contract_result]
    if receipt.contract_address:
        out["contract_address"] = show_address(receipt.contract_address, visible)
    fields = {name: getattr(receipt, name) for name in _RECEIPT_FIELDS}
    receipt_json: dict[str, Any] = {name: value for name, value in fields.items() if value}
    if entry.tx.call.kind == "TriggerSmartContract":
        receipt_json["result"] = receipt.result  # DEFAULT (omitted) for system contracts
    out["receipt"] = receipt_json
    if receipt.logs:
        out["log"] = [
            {
                "address": show_address(log.address, True) if visible else log.address[2:],
                "topics": list(log.topics),
                "data": log.data,
            }
            for log in receipt.logs
        ]
    if receipt.failed:
        out["result"] = "FAILED"
        out["resMessage"] = text(receipt.res_message, visible)
    return out


def owner_permission(address: Hex41, visible: bool) -> dict[str, Any]:
    return {
        "permission_name": "owner",
        "threshold": 1,
        "keys": [{"address": show_address(address, visible), "weight": 1}],
    }


def active_permission(address: Hex41, visible: bool) -> dict[str, Any]:
    return {
        "type": "Active",
        "id": 2,
        "permission_name": "active",
        "threshold": 1,
        "operations": ACTIVE_OPERATIONS,
        "keys": [{"address": show_address(address, visible), "weight": 1}],
    }


def account_json(address: Hex41, account: Account, visible: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"address": show_address(address, visible)}
    if account.balance:
        out["balance"] = account.balance
    out["create_time"] = account.create_time
    if account.net_used:
        out["net_usage"] = account.net_used
    if account.free_net_used:
        out["free_net_usage"] = account.free_net_used
    if account.latest_consume_time:
        out["latest_consume_time"] = account.latest_consume_time
    if account.free_net_used:
        out["latest_consume_free_time"] = account.latest_consume_free_time
    out["net_window_size"] = 28_800_000
    if account.delegated_bandwidth:
        out["delegated_frozenV2_balance_for_bandwidth"] = account.delegated_bandwidth
    if account.acquired_bandwidth:
        out["acquired_delegated_frozenV2_balance_for_bandwidth"] = account.acquired_bandwidth
    resource: dict[str, Any] = {}
    if account.energy_used:
        resource["energy_usage"] = account.energy_used
    if account.latest_consume_time_for_energy:
        resource["latest_consume_time_for_energy"] = account.latest_consume_time_for_energy
    resource["energy_window_size"] = 28_800_000
    if account.delegated_energy:
        resource["delegated_frozenV2_balance_for_energy"] = account.delegated_energy
    if account.acquired_energy:
        resource["acquired_delegated_frozenV2_balance_for_energy"] = account.acquired_energy
    out["account_resource"] = resource
    out["owner_permission"] = owner_permission(address, visible)
    out["active_permission"] = [active_permission(address, visible)]
    bandwidth = {"amount": account.frozen_bandwidth} if account.frozen_bandwidth else {}
    energy: dict[str, Any] = {"type": "ENERGY"}
    if account.frozen_energy:
        energy["amount"] = account.frozen_energy
    out["frozenV2"] = [bandwidth, energy, {"type": "TRON_POWER"}]
    if account.unfrozen:
        out["unfrozenV2"] = [_unfrozen_json(*entry) for entry in account.unfrozen]
    out["asset_optimized"] = True
    return out


def _unfrozen_json(resource: str, amount: int, expire_time: int) -> dict[str, Any]:
    out: dict[str, Any] = {} if resource == "BANDWIDTH" else {"type": resource}
    out["unfreeze_amount"] = amount
    out["unfreeze_expire_time"] = expire_time
    return out


def account_resource_json(
    account: Account, ledger: Ledger, params: NetworkParams, now_ms: int
) -> dict[str, Any]:
    """AccountResourceMessage: zero fields left out, usage as recovered by now."""
    fields = {
        "freeNetUsed": account.free_net_used_at(now_ms),
        "freeNetLimit": FREE_NET_LIMIT,
        "NetUsed": net_used(account, now_ms),
        "NetLimit": net_limit(account, ledger, params),
        "TotalNetLimit": params.total_net_limit,
        "TotalNetWeight": total_net_weight(ledger, params),
        "tronPowerLimit": (account.frozen_bandwidth + account.frozen_energy
                           + account.delegated_bandwidth + account.delegated_energy) // 1_000_000,
        "EnergyUsed": energy_used(account, now_ms),
        "EnergyLimit": energy_limit(account, ledger, params),
        "TotalEnergyLimit": params.total_energy_limit,
        "TotalEnergyWeight": total_energy_weight(ledger, params),
    }  # fmt: skip
    return {name: value for name, value in fields.items() if value}


def node_info_json(chain: Chain) -> dict[str, Any]:
    head, solid = chain.head, chain.top(solid=True)
    return {
        "activeConnectCount": 0,
        "beginSyncNum": head.number,
        "block": f"Num:{head.number},ID:{head.block_id}",
        "solidityBlock": f"Num:{solid.number},ID:{solid.block_id}",
        "currentConnectCount": 0,
        "passiveConnectCount": 0,
        "totalFlow": 0,
        "peerList": [],
        "configNodeInfo": {
            "codeVersion": "4.8.1",
            "versionNum": "18636",
            "p2pVersion": "0",
            "listenPort": 0,
            "discoverEnable": False,
            "maxConnectCount": 0,
            "supportConstant": True,
            "dbVersion": 2,
        },
        "machineInfo": {
            "cpuCount": os.cpu_count() or 1,
            "javaVersion": "none (stablegate devnet)",
            "threadCount": threading.active_count(),
        },
        "cheatWitnessInfoMap": {},
    }
