"""Signing for the Tron devnet tests with tools that are not the devnet's own: coincurve
signs the txID (the devnet verifies with eth-keys), and a signed `protocol.Transaction` is
serialized by hand here (raw = 1, signature = 2, core/Tron.proto) for `broadcasthex`, so
the devnet's decoder meets bytes it did not produce.
"""

from __future__ import annotations

import hashlib
from typing import Any

import coincurve

from tests.fixtures.tron import TronApi


def sign(txid: str, private_key: str) -> str:
    """65-byte r||s||v (v 0/1) over the txID, as Tron wallets sign."""
    key = coincurve.PrivateKey(bytes.fromhex(private_key))
    return key.sign_recoverable(bytes.fromhex(txid), hasher=None).hex()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def transaction_hex(raw_data_hex: str, signatures: list[str]) -> str:
    raw = bytes.fromhex(raw_data_hex)
    out = b"\x0a" + _varint(len(raw)) + raw
    for signature in signatures:
        sig = bytes.fromhex(signature)
        out += b"\x12" + _varint(len(sig)) + sig
    return out.hex()


def signed_hex(built: dict[str, Any], private_key: str) -> str:
    """A node-built transaction signed offline: checks txID = sha256(raw_data_hex) first,
    as a signer must (chains.md §3.4)."""
    assert hashlib.sha256(bytes.fromhex(built["raw_data_hex"])).hexdigest() == built["txID"]
    return transaction_hex(built["raw_data_hex"], [sign(built["txID"], private_key)])


async def build(api: TronApi, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Call a builder (visible=true, base58 addresses) and return the unsigned tx."""
    answer: dict[str, Any] = await api.call(path, {**body, "visible": True})
    assert "Error" not in answer, answer
    if path == "wallet/triggersmartcontract":
        assert answer["result"] == {"result": True}, answer
        built: dict[str, Any] = answer["transaction"]
        return built
    return answer


async def send(api: TronApi, path: str, body: dict[str, Any], private_key: str) -> str:
    """Build, sign offline, broadcast as hex; returns the txid the node accepted."""
    built = await build(api, path, body)
    answer = await api.call("wallet/broadcasthex", {"transaction": signed_hex(built, private_key)})
    assert answer["result"] is True, answer
    assert answer["txid"] == built["txID"]
    txid: str = answer["txid"]
    return txid


async def info(api: TronApi, txid: str) -> dict[str, Any]:
    found: dict[str, Any] = await api.call("wallet/gettransactioninfobyid", {"value": txid})
    assert found, f"{txid} is not in a block"
    return found


async def account(api: TronApi, address: str) -> dict[str, Any]:
    found: dict[str, Any] = await api.call(
        "wallet/getaccount", {"address": address, "visible": True}
    )
    return found


async def resources(api: TronApi, address: str) -> dict[str, Any]:
    found: dict[str, Any] = await api.call(
        "wallet/getaccountresource", {"address": address, "visible": True}
    )
    return found


def usdt_transfer(
    owner: str, contract: str, to_hex41: str, amount: int, fee_limit: int
) -> dict[str, Any]:
    """A `triggersmartcontract` body for `transfer(to, amount)` (visible=true)."""
    return {
        "owner_address": owner,
        "contract_address": contract,
        "function_selector": "transfer(address,uint256)",
        "parameter": "00" * 12 + to_hex41[2:] + f"{amount:064x}",
        "fee_limit": fee_limit,
    }
