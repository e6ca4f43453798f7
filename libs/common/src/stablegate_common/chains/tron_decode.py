"""Decoding java-tron HTTP answers into the watcher's types: blocks into `BlockHeader`s, the
transaction infos of a block into TRC-20 `TokenTransfer`s, and the three textual forms of
a Tron address into one another (research chains.md §3.1, §3.3).

Pure functions, no I/O. What the node wrote (block numbers, ids, hashes) must be valid or
the call fails with ChainError, so a broken node never makes a real payment silently
disappear; what a contract wrote (topics, data) may be anything and is skipped when it is
not a TRC-20 Transfer.

Protobuf JSON omits zero-valued fields: a missing `number` or `timestamp` is 0 (genesis),
a missing `parentHash` is empty bytes, a block without transactions has no
`transactions` key, and a plain TRX transfer's receipt has no `result`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tronpy import keys

from stablegate_common.chains.base import BlockHeader, ChainError, TokenTransfer

TRANSFER_TOPIC = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
# Only TVM execution emits event logs; every other contract type (TRX, TRC-10, staking…)
# cannot carry a TRC-20 Transfer, so its transactions need no receipt.
LOG_CONTRACT_TYPES = frozenset({"TriggerSmartContract", "CreateSmartContract"})
EMPTY_HASH = "0" * 64

_HASH = re.compile(r"^[0-9a-f]{64}$")
_ADDRESS_TOPIC = re.compile(r"^0{24}([0-9a-f]{40})$")
_HEX20 = re.compile(r"^[0-9a-f]{40}$")
_HEX41 = re.compile(r"^41[0-9a-f]{40}$")


@dataclass(frozen=True)
class TronBlock:
    """What the watcher reads of one block: its header, its transaction ids in block
    order, and those of them whose execution may have emitted logs."""

    header: BlockHeader
    tx_ids: tuple[str, ...]
    log_tx_ids: frozenset[str]


# -- addresses ---------------------------------------------------------------------------


def to_base58(address: str) -> str:
    """Base58 `T…` of any form: base58, hex41 (`41…`), 20-byte hex (log and topic form).

    Raises ValueError for anything that is not a Tron address (bad checksum included).
    """
    text = address.strip()
    bare = text.lower().removeprefix("0x")
    if _HEX20.match(bare):
        text = "41" + bare
    elif _HEX41.match(bare):
        text = bare
    try:
        return str(keys.to_base58check_address(text))
    except (IndexError, TypeError) as exc:  # tronpy's answer to an empty or odd input
        raise ValueError(f"not a Tron address: {address!r}") from exc


def to_hex41(address: str) -> str:
    """The hex form the HTTP API takes with `visible=false`: `41` + 20 bytes, lowercase."""
    return str(keys.to_hex_address(to_base58(address))).lower()


def to_hex20(address: str) -> str:
    """The 20-byte hex form of logs, topics and ABI parameters (no `41`, no `0x`)."""
    return to_hex41(address)[2:]


def _log_contract(value: Any) -> str | None:
    """A log's emitting contract as 20-byte hex; `visible=true` answers give base58."""
    text = str(value)
    bare = text.lower().removeprefix("0x")
    if _HEX20.match(bare):
        return bare
    if _HEX41.match(bare):
        return bare[2:]
    try:
        return to_hex20(text)
    except ValueError:
        return None


# -- blocks ------------------------------------------------------------------------------


def decode_block(raw: Any, path: str) -> TronBlock | None:
    """The block in a `getblockbynum`/`getnowblock` answer; None for `{}` (not found)."""
    if raw == {}:
        return None
    if not isinstance(raw, dict):
        raise ChainError(f"{path}: expected a block object, got {type(raw).__name__}")
    header = _dict(_dict(raw.get("block_header"), f"{path}: block_header").get("raw_data"), path)
    number = integer(header.get("number", 0), f"{path}: block number")
    transactions = raw.get("transactions", [])
    if not isinstance(transactions, list):
        raise ChainError(f"{path}: block {number}: transactions is not a list")
    tx_ids = tuple(_hash(_dict(tx, path).get("txID"), f"{path}: txID") for tx in transactions)
    log_tx_ids = frozenset(
        tx_id for tx_id, tx in zip(tx_ids, transactions, strict=True) if _may_log(tx)
    )
    return TronBlock(
        header=BlockHeader(
            number=number,
            hash=_hash(raw.get("blockID"), f"{path}: blockID"),
            parent_hash=_hash(header.get("parentHash", EMPTY_HASH), f"{path}: parentHash"),
            timestamp=_from_millis(integer(header.get("timestamp", 0), f"{path}: timestamp")),
        ),
        tx_ids=tx_ids,
        log_tx_ids=log_tx_ids,
    )


def block_number(raw: Any, path: str) -> int:
    """The number of the block in a `getnowblock` answer (an empty chain is an error)."""
    block = decode_block(raw, path)
    if block is None:
        raise ChainError(f"{path}: the node has no block yet")
    return block.header.number


def _may_log(tx: dict[str, Any]) -> bool:
    raw_data = tx.get("raw_data")
    contracts = raw_data.get("contract") if isinstance(raw_data, dict) else None
    if not isinstance(contracts, list) or not contracts:
        return True  # an unreadable transaction is read in full rather than skipped
    types = [c.get("type") if isinstance(c, dict) else None for c in contracts]
    return any(not isinstance(t, str) or t in LOG_CONTRACT_TYPES for t in types)


# -- transfers ---------------------------------------------------------------------------


def decode_transfers(
    block: TronBlock, infos: Any, allowed: Mapping[str, str], path: str
) -> list[TokenTransfer]:
    """TRC-20 Transfers of `allowed` contracts (20-byte hex → base58) in one block, from
    its `gettransactioninfobyblocknum` answer.

    Counted only when the receipt result is SUCCESS. The log index is the log's position
    among all logs of the block (every transaction's `log` in block order, failed ones
    and non-Transfer logs included): java-tron has no log index of its own, and this one,
    like EVM's `logIndex`, is fixed by the block's content, so (tx id, log index) names
    the same log on every read of the same block.
    """
    number = block.header.number
    by_id = _infos_by_id(infos, number, path)
    unknown = set(by_id) - set(block.tx_ids)
    if unknown:
        raise ChainError(f"{path}: block {number} changed while it was read")
    missing = block.log_tx_ids - set(by_id)
    if missing:
        raise ChainError(f"{path}: no transaction info for {sorted(missing)[0]} in block {number}")
    transfers: list[TokenTransfer] = []
    log_index = 0
    for tx_id in block.tx_ids:
        info = by_id.get(tx_id)
        if info is None:
            continue
        logs = info.get("log", [])
        if not isinstance(logs, list):
            raise ChainError(f"{path}: tx {tx_id}: log is not a list")
        counted = _succeeded(info)
        for log in logs:
            found = _transfer(log, allowed) if counted else None
            if found is not None:
                contract, sender, recipient, amount = found
                transfers.append(
                    TokenTransfer(
                        token_contract=contract,
                        tx_hash=tx_id,
                        log_index=log_index,
                        block_number=number,
                        block_hash=block.header.hash,
                        from_address=sender,
                        to_address=recipient,
                        amount_base_units=amount,
                    )
                )
            log_index += 1
    return transfers


def _infos_by_id(infos: Any, number: int, path: str) -> dict[str, dict[str, Any]]:
    if infos == {}:
        return {}  # java-tron's answer for a block it does not have
    if not isinstance(infos, list):
        raise ChainError(f"{path}: expected a list of transaction infos, got {infos!r:.200}")
    by_id: dict[str, dict[str, Any]] = {}
    for info in infos:
        entry = _dict(info, path)
        reported = entry.get("blockNumber")
        if reported is not None and integer(reported, f"{path}: blockNumber") != number:
            raise ChainError(f"{path}: asked for block {number}, got an info of {reported}")
        by_id[_hash(entry.get("id"), f"{path}: id")] = entry
    return by_id


def _succeeded(info: Mapping[str, Any]) -> bool:
    receipt = info.get("receipt")
    if not isinstance(receipt, dict) or receipt.get("result") != "SUCCESS":
        return False
    return info.get("result") != "FAILED"


def _transfer(log: Any, allowed: Mapping[str, str]) -> tuple[str, str, str, int] | None:
    """(contract, from, to, amount) in base58 when the log is a TRC-20 Transfer of an
    allowed contract: three topics (a TRC-721 Transfer indexes a fourth) and one word."""
    if not isinstance(log, dict):
        return None
    contract = allowed.get(_log_contract(log.get("address", "")) or "")
    topics = log.get("topics")
    if contract is None or not isinstance(topics, list) or len(topics) != 3:
        return None
    if _topic(topics[0]) != TRANSFER_TOPIC:
        return None
    sender = _ADDRESS_TOPIC.match(_topic(topics[1]))
    recipient = _ADDRESS_TOPIC.match(_topic(topics[2]))
    data = _topic(log.get("data", ""))
    if sender is None or recipient is None or not _HASH.match(data):
        return None
    return (
        contract,
        to_base58(sender.group(1)),
        to_base58(recipient.group(1)),
        int(data, 16),
    )


def _topic(value: Any) -> str:
    return str(value).lower().removeprefix("0x")


# -- scalars -----------------------------------------------------------------------------


def integer(value: Any, field: str) -> int:
    """An int field; GET answers with `int64_as_string` give decimal strings."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ChainError(f"{field}: not an integer: {value!r}")


def _hash(value: Any, field: str) -> str:
    text = str(value).lower()
    if not _HASH.match(text):
        raise ChainError(f"{field}: not a 32-byte hex id: {value!r}")
    return text


def _dict(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ChainError(f"{field}: expected an object, got {value!r:.200}")
    return value


def _from_millis(millis: int) -> datetime:
    # Integer arithmetic: a block time in milliseconds, without a float on the way.
    return datetime.fromtimestamp(millis // 1000, tz=UTC) + timedelta(milliseconds=millis % 1000)
