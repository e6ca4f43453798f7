"""The EVM chain client (Ethereum, BSC): heads, block headers, ERC-20 Transfer logs and
token reads over raw JSON-RPC.

Raw JSON-RPC rather than web3's formatting layer, which is about ten times slower on large
log batches (research chains.md §2.5); the calls here need no ABI machinery. Logs are
decoded here and only ERC-20 shaped ones survive: exactly three topics (an ERC-721
Transfer indexes its token id as a fourth) and exactly one 32-byte word of data. The
client reports what the chain says, zero-value transfers included; deciding what a
transfer means is the engine's job.
"""

from __future__ import annotations

import re
from collections.abc import Container, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from eth_utils.crypto import keccak

from stablegate_common.chains.base import (
    BlockHeader,
    BlockNotFound,
    BroadcastRejected,
    ChainError,
    ChainUnavailable,
    TokenTransfer,
    TransferLogs,
    TxReceipt,
)
from stablegate_common.chains.jsonrpc import Call, JsonRpcTransport
from stablegate_common.core.addresses import canonical_address

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
BALANCE_OF_SELECTOR = "0x70a08231"  # balanceOf(address)
DECIMALS_SELECTOR = "0x313ce567"  # decimals()

_HASH = re.compile(r"^0x[0-9a-f]{64}$")
_ADDRESS_TOPIC = re.compile(r"^0x0{24}([0-9a-f]{40})$")
_WORD = re.compile(r"^0x[0-9a-f]{64}$")
_QUANTITY = re.compile(r"^0x[0-9a-fA-F]{1,64}$")
BLOOM_BYTES = 256
_ORDER = attrgetter("block_number", "log_index")
_SIGNED_HEX = re.compile(r"^(0x)?([0-9a-fA-F]{2})+$")
# Node answers meaning "this transaction is already in the pool or in a block": geth
# "already known", "known transaction", anvil "transaction already imported"; a nonce
# already used (by this transaction, mined, or by another of the same nonce: the watcher
# tells which) is "nonce too low".
_ALREADY_SENT_TEXT = ("already known", "known transaction", "already imported", "nonce too low")


@dataclass(frozen=True)
class FeeHistory:
    """`eth_feeHistory` decoded: `base_fees` has one entry per block plus the next block's,
    `rewards` one tuple per block with the tip at each requested percentile (wei)."""

    oldest_block: int
    base_fees: tuple[int, ...]
    rewards: tuple[tuple[int, ...], ...]

    @property
    def next_base_fee(self) -> int:
        return self.base_fees[-1]


class EvmClient:
    """`ChainClient` for an EVM node.

    `poa` records that the chain is proof-of-authority (BSC). Its blocks carry 97 bytes of
    extraData (32 vanity + 65 validator seal), which web3's block formatter rejects unless
    ExtraDataToPOAMiddleware is injected (chains.md §2.4). This client reads headers over
    raw JSON-RPC and takes only number, hash, parentHash and timestamp, so extraData and
    BSC's extra header fields never reach a parser; the flag exists so configuration states
    it, and so any web3-based caller knows to add that middleware.
    """

    def __init__(
        self,
        rpc_url: str,
        *,
        timeout_seconds: float = 10.0,
        poa: bool = False,
        max_batch: int = 100,
    ) -> None:
        self.rpc_url = rpc_url
        self.poa = poa
        # geth caps a batch at 1,000 calls by default; stay well below on any provider.
        self._max_batch = max_batch
        self._rpc = JsonRpcTransport(rpc_url, timeout_seconds=timeout_seconds)

    async def __aenter__(self) -> EvmClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def chain_id(self) -> int:
        """The node's chain id, to refuse a node of the wrong chain at start-up."""
        return _quantity(await self._rpc.call("eth_chainId", []), "eth_chainId")

    async def head(self) -> int:
        return _quantity(await self._rpc.call("eth_blockNumber", []), "eth_blockNumber")

    async def gas_price(self) -> int:
        """`eth_gasPrice` in wei: the legacy price per gas unit. On BSC this is the whole
        price (its base fee is zero); on Ethereum it is the node's base fee plus tip guess."""
        return _quantity(await self._rpc.call("eth_gasPrice", []), "eth_gasPrice")

    async def headers(self, numbers: Sequence[int]) -> list[BlockHeader]:
        wanted = list(numbers)
        headers: list[BlockHeader] = []
        for start in range(0, len(wanted), self._max_batch):
            chunk = wanted[start : start + self._max_batch]
            blocks = await self._rpc.batch(
                [("eth_getBlockByNumber", [hex(number), False]) for number in chunk]
            )
            pairs = zip(chunk, blocks, strict=True)
            headers.extend(_header(block, number) for number, block in pairs)
        return headers

    async def transfers(
        self, from_block: int, to_block: int, contracts: Sequence[str]
    ) -> list[TokenTransfer]:
        return (await self.transfer_logs(from_block, to_block, contracts, None)).transfers

    async def transfers_to(
        self,
        from_block: int,
        to_block: int,
        contracts: Sequence[str],
        recipients: Container[str],
    ) -> list[TokenTransfer]:
        """`transfers` to `recipients` only: the other logs are never decoded."""
        return (await self.transfer_logs(from_block, to_block, contracts, recipients)).transfers

    async def transfer_logs(
        self,
        from_block: int,
        to_block: int,
        contracts: Sequence[str],
        recipients: Container[str] | None,
    ) -> TransferLogs:
        """Transfers (to `recipients` when given) and the blocks any Transfer log came from."""
        allowed = sorted({canonical_address("evm", c) for c in contracts})
        # An empty address list means "every contract" to eth_getLogs: that must never
        # happen, or look-alike tokens would be reported. Nodes also disagree on
        # from > to (anvil: [], java-tron: error), so neither reaches the node.
        if not allowed or from_block > to_block:
            return TransferLogs([], {})
        query = {
            "fromBlock": hex(from_block),
            "toBlock": hex(to_block),
            "address": allowed,
            "topics": [TRANSFER_TOPIC],
        }
        logs = _log_list(await self._rpc.call("eth_getLogs", [query]))
        return TransferLogs(
            decode_transfers(logs, frozenset(allowed), recipients), _log_blocks(logs)
        )

    async def block_transfers(
        self,
        block_hashes: Sequence[str],
        contracts: Sequence[str],
        recipients: Container[str] | None,
    ) -> list[TokenTransfer]:
        """Transfer logs in exactly these blocks: `eth_getLogs` by `blockHash` (EIP-234),
        one JSON-RPC batch. A node without the block answers an error, never []."""
        allowed = sorted({canonical_address("evm", c) for c in contracts})
        if not allowed or not block_hashes:
            return []
        calls: list[Call] = [
            ("eth_getLogs", [{"blockHash": h, "address": allowed, "topics": [TRANSFER_TOPIC]}])
            for h in block_hashes
        ]
        found: list[TokenTransfer] = []
        for block_hash, result in zip(block_hashes, await self._rpc.batch(calls), strict=True):
            for transfer in decode_transfers(_log_list(result), frozenset(allowed), recipients):
                if transfer.block_hash != block_hash.lower():
                    raise ChainError(
                        f"eth_getLogs by blockHash {block_hash}: a log of block "
                        f"{transfer.block_hash} came back"
                    )
                found.append(transfer)
        found.sort(key=_ORDER)
        return found

    async def token_balance(self, contract: str, address: str, block: int | None = None) -> int:
        """`balanceOf(address)` at `block` (latest when None)."""
        holder = canonical_address("evm", address)
        data = BALANCE_OF_SELECTOR + "0" * 24 + holder.removeprefix("0x")
        return await self._call_uint(contract, data, "balanceOf", block)

    async def token_balances(
        self, queries: Sequence[tuple[str, str]], block: int | None = None
    ) -> list[int]:
        """`balanceOf` for each (contract, holder), in order, as ONE JSON-RPC batch of
        `eth_call`s at `block`: a single HTTP round trip however many holders (the caller
        sizes the batches to the provider's cap)."""
        tag = "latest" if block is None else hex(block)
        calls: list[Call] = []
        for contract, holder in queries:
            data = BALANCE_OF_SELECTOR + "0" * 24 + canonical_address("evm", holder)[2:]
            calls.append(
                ("eth_call", [{"to": canonical_address("evm", contract), "data": data}, tag])
            )
        results = await self._rpc.batch(calls)
        return [
            _uint(result, "balanceOf", contract)
            for result, (contract, _) in zip(results, queries, strict=True)
        ]

    async def token_decimals(self, contract: str) -> int:
        return await self._call_uint(contract, DECIMALS_SELECTOR, "decimals")

    async def fee_history(self, block_count: int, percentiles: Sequence[float]) -> FeeHistory:
        """`eth_feeHistory` over the newest `block_count` blocks (EIP-1559 chains)."""
        result = await self._rpc.call(
            "eth_feeHistory", [hex(block_count), "latest", list(percentiles)]
        )
        if not isinstance(result, dict) or not isinstance(result.get("baseFeePerGas"), list):
            raise ChainError(f"eth_feeHistory: expected an object with baseFeePerGas: {result!r}")
        rewards = result.get("reward") or []
        if not isinstance(rewards, list) or not all(isinstance(r, list) for r in rewards):
            raise ChainError(f"eth_feeHistory: reward is not a list of lists: {rewards!r}")
        return FeeHistory(
            oldest_block=_quantity(result.get("oldestBlock"), "oldestBlock"),
            base_fees=tuple(_quantity(v, "baseFeePerGas") for v in result["baseFeePerGas"]),
            rewards=tuple(tuple(_quantity(v, "reward") for v in block) for block in rewards),
        )

    async def tx_receipt(self, tx_hash: str) -> TxReceipt | None:
        """`eth_getTransactionReceipt`: None while the transaction is in no block."""
        result = await self._rpc.call("eth_getTransactionReceipt", [tx_hash])
        return None if result is None else _receipt(result, tx_hash.lower())

    async def tx_known(self, tx_hash: str) -> bool:
        """`eth_getTransactionByHash` is not null: in the pool or in a block."""
        return await self._rpc.call("eth_getTransactionByHash", [tx_hash]) is not None

    async def transaction_count(self, address: str, block: str = "latest") -> int:
        """`eth_getTransactionCount` at `block` ("latest", "finalized", "pending", or a
        0x height): the next nonce of `address` as of that block."""
        result = await self._rpc.call("eth_getTransactionCount", [address, block])
        return _quantity(result, "eth_getTransactionCount")

    async def send_raw_transaction(self, signed_hex: str) -> str:
        """`eth_sendRawTransaction`; the hash is keccak256 of the signed bytes either way."""
        if not _SIGNED_HEX.match(signed_hex):
            raise BroadcastRejected("eth_sendRawTransaction: the signed transaction is not hex")
        raw = "0x" + signed_hex.removeprefix("0x").lower()
        tx_hash = "0x" + keccak(bytes.fromhex(raw[2:])).hex()
        try:
            await self._rpc.call("eth_sendRawTransaction", [raw])
        except ChainUnavailable:
            raise
        except ChainError as exc:
            if any(marker in exc.message.lower() for marker in _ALREADY_SENT_TEXT):
                return tx_hash
            raise BroadcastRejected(exc.message, rpc_code=exc.rpc_code) from exc
        return tx_hash

    async def close(self) -> None:
        await self._rpc.close()

    async def _call_uint(
        self, contract: str, data: str, function: str, block: int | None = None
    ) -> int:
        target = canonical_address("evm", contract)
        tag = "latest" if block is None else hex(block)
        result = await self._rpc.call("eth_call", [{"to": target, "data": data}, tag])
        return _uint(result, function, target)


def _uint(result: Any, function: str, contract: str) -> int:
    word = str(result).lower()[:66]
    if not _WORD.match(word):
        # "0x" comes back from an address without code: a wrong contract in the registry.
        raise ChainError(f"{function}() on {contract} returned {result!r}, not a uint256")
    return int(word, 16)


def _header(block: Any, number: int) -> BlockHeader:
    if block is None:
        raise BlockNotFound(number)
    if not isinstance(block, dict):
        raise ChainError(f"eth_getBlockByNumber({number}): expected an object, got {block!r}")
    reported = _quantity(block.get("number"), "block.number")
    if reported != number:
        raise ChainError(f"asked for block {number}, the node answered block {reported}")
    return BlockHeader(
        number=number,
        hash=_hash(block.get("hash"), "block.hash"),
        parent_hash=_hash(block.get("parentHash"), "block.parentHash"),
        timestamp=datetime.fromtimestamp(_quantity(block.get("timestamp"), "timestamp"), tz=UTC),
        logs_bloom=_bloom(block.get("logsBloom"), number),
    )


def _bloom(value: Any, number: int) -> bytes | None:
    if value is None:
        return None  # a node that leaves it out only disables the completeness check
    try:
        bloom = bytes.fromhex(value[2:]) if isinstance(value, str) and value[:2] == "0x" else b""
    except ValueError:
        bloom = b""
    if len(bloom) != BLOOM_BYTES:
        raise ChainError(f"block {number}: logsBloom is not 256 bytes of hex: {value!r}")
    return bloom


def _receipt(result: Any, tx_hash: str) -> TxReceipt:
    if not isinstance(result, dict):
        raise ChainError(f"eth_getTransactionReceipt({tx_hash}): not an object: {result!r:.200}")
    reported = _hash(result.get("transactionHash"), "receipt.transactionHash")
    if reported != tx_hash:
        raise ChainError(f"asked for the receipt of {tx_hash}, the node answered {reported}")
    status = _quantity(result.get("status"), "receipt.status")
    gas_used = _quantity(result.get("gasUsed"), "receipt.gasUsed")
    price = _quantity(result.get("effectiveGasPrice"), "receipt.effectiveGasPrice")
    return TxReceipt(
        tx_hash=tx_hash,
        block_number=_quantity(result.get("blockNumber"), "receipt.blockNumber"),
        block_hash=_hash(result.get("blockHash"), "receipt.blockHash"),
        success=status == 1,
        fee_paid_base_units=gas_used * price,
        gas_used=gas_used,
        effective_gas_price=price,
    )


def _log_list(result: Any) -> list[Any]:
    if not isinstance(result, list):
        raise ChainError(f"eth_getLogs: expected a list, got {type(result).__name__}")
    return result


def _log_blocks(logs: Sequence[Any]) -> dict[int, str]:
    """Block number → hash of every block among `logs`. Read from the raw strings of the
    distinct blocks only: a window of 10,000 logs has a few hundred blocks at most."""
    pairs = {
        (log.get("blockNumber"), log.get("blockHash")) for log in logs if isinstance(log, dict)
    }
    blocks: dict[int, str] = {}
    for number, block_hash in pairs:
        # Two hashes for one height (a mixed answer): keep neither, so the block is checked.
        n = _quantity(number, "log.blockNumber")
        h = _hash(block_hash, "log.blockHash")
        blocks[n] = h if blocks.get(n, h) == h else ""
    return blocks


def decode_transfers(
    logs: Sequence[Any], allowed: frozenset[str], recipients: Container[str] | None = None
) -> list[TokenTransfer]:
    """The ERC-20 transfers among `logs`, by block and log index; with `recipients`, only
    those to them. The recipient test reads the `to` topic's last 40 digits unchecked, so
    it is cheap for the many logs it drops; the logs it keeps are fully validated."""
    if recipients is not None:
        logs = [log for log in logs if _recipient_hint(log) in recipients]
    transfers = [t for log in logs if (t := _transfer(log, allowed)) is not None]
    transfers.sort(key=_ORDER)
    return transfers


def _recipient_hint(log: Any) -> str | None:
    topics = log.get("topics") if isinstance(log, dict) else None
    if not isinstance(topics, list) or len(topics) != 3:
        return None
    return "0x" + str(topics[2])[-40:].lower()


def _transfer(log: Any, allowed: frozenset[str]) -> TokenTransfer | None:
    """The transfer a log records, or None when the log is not an ERC-20 Transfer.

    What a contract wrote (topics, data) may be anything and is skipped when malformed;
    what the node wrote (block, tx, index) must be valid or the whole call fails, so a
    broken node never makes a real payment silently disappear.
    """
    if not isinstance(log, dict) or log.get("removed") is True:
        return None
    contract = str(log.get("address", "")).lower()
    topics = log.get("topics")
    if contract not in allowed or not isinstance(topics, list) or len(topics) != 3:
        return None
    if str(topics[0]).lower() != TRANSFER_TOPIC:
        return None
    sender, recipient = _topic_address(topics[1]), _topic_address(topics[2])
    data = str(log.get("data", "")).lower()
    if sender is None or recipient is None or not _WORD.match(data):
        return None
    return TokenTransfer(
        token_contract=contract,
        tx_hash=_hash(log.get("transactionHash"), "log.transactionHash"),
        log_index=_quantity(log.get("logIndex"), "log.logIndex"),
        block_number=_quantity(log.get("blockNumber"), "log.blockNumber"),
        block_hash=_hash(log.get("blockHash"), "log.blockHash"),
        from_address=sender,
        to_address=recipient,
        amount_base_units=int(data, 16),
    )


def _topic_address(topic: Any) -> str | None:
    match = _ADDRESS_TOPIC.match(str(topic).lower())
    return "0x" + match.group(1) if match else None


def _quantity(value: Any, field: str) -> int:
    if not isinstance(value, str) or not _QUANTITY.match(value):
        raise ChainError(f"{field}: not a hex quantity: {value!r}")
    return int(value, 16)


def _hash(value: Any, field: str) -> str:
    text = str(value).lower()
    if not _HASH.match(text):
        raise ChainError(f"{field}: not a 32-byte hash: {value!r}")
    return text


__all__ = [
    "BALANCE_OF_SELECTOR",
    "DECIMALS_SELECTOR",
    "TRANSFER_TOPIC",
    "EvmClient",
    "FeeHistory",
    "decode_transfers",
]
