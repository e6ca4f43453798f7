"""What the watcher engine knows about a chain: block headers, token transfers, balances,
and the errors a chain client may raise. Nothing here depends on a chain family; each
client translates its library's and node's failures into these exceptions.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class BlockHeader:
    number: int
    hash: str
    parent_hash: str
    timestamp: datetime  # timezone-aware UTC
    # EVM's 256-byte `logsBloom`; None on a chain without blooms (Tron). The engine checks
    # a window's logs against it: a replica that lacks a block returns no logs for it.
    logs_bloom: bytes | None = None


@dataclass(frozen=True)
class TokenTransfer:
    """One Transfer log of a token contract, as the chain reports it.

    Addresses are canonical (lowercase 0x for EVM, base58 `T…` for Tron). `block_hash` is
    the hash the log was found in: the engine compares it with the header it stored,
    because a log fetched during a reorg can belong to a block that is no longer canonical.
    """

    token_contract: str
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    from_address: str
    to_address: str
    amount_base_units: int


@dataclass(frozen=True)
class TransferLogs:
    """The answer to a log query over a block range: the transfers (to the recipients
    asked for), and every block that returned a Transfer log of the contracts at all,
    recipients aside, with the block hash the logs carried."""

    transfers: list[TokenTransfer]
    blocks: Mapping[int, str]


class ChainError(Exception):
    """A chain node refused or failed a request. `code` is stable for logs and metrics."""

    code: str = "chain_error"

    def __init__(self, message: str, *, rpc_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.rpc_code = rpc_code


class ChainUnavailable(ChainError):
    """The node is down, slow, overloaded or rate-limiting: retry later, same request."""

    code = "chain_unavailable"


class RangeTooLarge(ChainError):
    """The node refuses the block window or its result size: retry with a smaller window.

    `suggested_range` is the (from, to) window the provider proposed, when it did;
    `max_block_range` is the provider's stated limit on the window length, when it gave one.
    """

    code = "range_too_large"

    def __init__(
        self,
        message: str,
        *,
        rpc_code: int | None = None,
        suggested_range: tuple[int, int] | None = None,
        max_block_range: int | None = None,
    ) -> None:
        super().__init__(message, rpc_code=rpc_code)
        self.suggested_range = suggested_range
        self.max_block_range = max_block_range


class BlockNotFound(ChainError):
    """The node has no block at that height (above its head, or pruned)."""

    code = "block_not_found"

    def __init__(self, number: int) -> None:
        super().__init__(f"block {number} not found")
        self.number = number


class ChainClient(Protocol):
    """The calls the watcher engine and the reconciler make on any chain."""

    async def head(self) -> int:
        """The number of the newest block the node has."""
        ...

    async def headers(self, numbers: Sequence[int]) -> list[BlockHeader]:
        """Headers of these blocks, in the order asked (fetched in batches)."""
        ...

    async def transfers(
        self, from_block: int, to_block: int, contracts: Sequence[str]
    ) -> list[TokenTransfer]:
        """Transfer logs emitted by `contracts` in blocks from_block..to_block inclusive,
        ordered by block and log index. Logs of any other contract are never returned."""
        ...

    async def token_balance(self, contract: str, address: str, block: int | None = None) -> int:
        """`balanceOf(address)` of the token at `block` (the newest when None), in base units."""
        ...

    async def token_decimals(self, contract: str) -> int: ...

    async def close(self) -> None: ...


@runtime_checkable
class FinalizedHeadSource(Protocol):
    """A chain with an explicit finality signal (Tron's solidified block).

    When the watcher's client offers it, a transfer is confirmed once its block is at or
    below `finalized_head()` and is the finalized block at its height
    (`finalized_hashes()`), instead of once it has the configured number of blocks on
    top (the count stays what events report as depth). The height alone is not enough:
    the node the watcher scans may be on a fork the finalized chain does not contain.
    """

    async def finalized_head(self) -> int:
        """The newest block the chain will not revert."""
        ...

    async def finalized_hashes(self, numbers: Sequence[int]) -> dict[int, str]:
        """Hashes of the finalized chain's blocks at these heights; heights not finalized
        (or unknown to the node) are left out."""
        ...


@runtime_checkable
class SolidifiedTxSource(Protocol):
    """Tron's solidity API asked about one transaction: what can no longer change.

    A Tron transaction is dead once a solidified block is past its expiration and the
    solidified chain does not hold it (a block holding it would be older than the
    expiration, so solidified already). A full node's head proves neither: it is not
    solidified, and with a provider pool it may be another node's.
    """

    async def finalized_header(self) -> BlockHeader:
        """The newest solidified block's header (its number and timestamp)."""
        ...

    async def solidified_tx_known(self, tx_hash: str) -> bool:
        """Whether a solidified block holds the transaction."""
        ...


@runtime_checkable
class BatchBalances(Protocol):
    """A client that reads many `balanceOf` in one request (a JSON-RPC batch).

    The reconciler reads every deposit address ever paid, each check; one HTTP request
    per address grows without bound, one per batch of a hundred does not.
    """

    async def token_balances(
        self, queries: Sequence[tuple[str, str]], block: int | None = None
    ) -> list[int]: ...


@runtime_checkable
class RecipientFilter(Protocol):
    """A client that drops transfers to other recipients before decoding them.

    On a busy token nearly every log pays a stranger, and decoding those is most of a
    scan's cost (bench/detection_scan.py); the engine asks for its watch set only when
    the client offers this, and filters again either way.
    """

    async def transfers_to(
        self,
        from_block: int,
        to_block: int,
        contracts: Sequence[str],
        recipients: Container[str],
    ) -> list[TokenTransfer]:
        """`transfers(...)` to `recipients` (canonical addresses) only."""
        ...


@runtime_checkable
class BlockLogsSource(Protocol):
    """A client that can show which blocks a log query covered and read one block's logs
    by its hash (EIP-234), so the engine can tell "no transfers" from "the node that
    answered lacks the block" (the EVM client; headers carry `logs_bloom`)."""

    async def transfer_logs(
        self,
        from_block: int,
        to_block: int,
        contracts: Sequence[str],
        recipients: Container[str] | None,
    ) -> TransferLogs:
        """`transfers(...)` (to `recipients` only, unless None) and the blocks logs came from."""
        ...

    async def block_transfers(
        self,
        block_hashes: Sequence[str],
        contracts: Sequence[str],
        recipients: Container[str] | None,
    ) -> list[TokenTransfer]:
        """Transfer logs of `contracts` in exactly these blocks, by block and log index.
        Raises ChainError when the node does not have one of them (it must not answer [])."""
        ...


# -- our own transactions, by hash (funds out, DESIGN.md §8) ---------------------------------


@dataclass(frozen=True)
class TxReceipt:
    """What the chain says of one transaction that is in a block.

    `block_hash` is the block the node says holds it; the caller checks it is the
    canonical block at `block_number` (a receipt read during a reorg may be stale).
    `fee_paid_base_units` is the native coin charged: gas used times effective gas price on
    EVM (wei), the burned TRX on Tron (sun, `fee`: energy and bandwidth burned together).
    """

    tx_hash: str
    block_number: int
    block_hash: str | None  # None on Tron: its receipt carries none (read the block)
    success: bool
    fee_paid_base_units: int
    gas_used: int | None = None  # EVM
    effective_gas_price: int | None = None  # EVM
    energy_used: int | None = None  # Tron: energy_usage_total
    bandwidth_used: int | None = None  # Tron: net_usage


class BroadcastRejected(ChainError):
    """The node refused a signed transaction for good (bad signature, expired, invalid,
    underpriced): sending the same bytes again will not change it."""

    code = "broadcast_rejected"


@runtime_checkable
class TxReceiptSource(Protocol):
    """A client that finds transactions by hash: the watcher tracks our own with it."""

    async def tx_receipt(self, tx_hash: str) -> TxReceipt | None:
        """The receipt, or None while the transaction is in no block."""
        ...

    async def tx_known(self, tx_hash: str) -> bool:
        """Whether the node knows the transaction at all (in its pool or in a block)."""
        ...


@runtime_checkable
class RawTransactionSender(Protocol):
    """A client that broadcasts signed transactions (the gateway's broadcaster)."""

    async def send_raw_transaction(self, signed_hex: str) -> str:
        """Send the signed bytes; return the transaction hash. A node that already has
        the transaction (in its pool, or mined: "already known", "nonce too low",
        DUP_TRANSACTION_ERROR) counts as sent. BroadcastRejected when refused for good,
        ChainUnavailable when the node could not be asked."""
        ...

    async def close(self) -> None: ...
