"""Chain clients: one protocol (`ChainClient`) that the watcher engine scans through, and
its implementations (`evm.EvmClient` for Ethereum and BSC, `tron.TronClient` for Tron)."""

from stablegate_common.chains.base import (
    BlockHeader,
    BlockLogsSource,
    BlockNotFound,
    BroadcastRejected,
    ChainClient,
    ChainError,
    ChainUnavailable,
    FinalizedHeadSource,
    RangeTooLarge,
    RawTransactionSender,
    RecipientFilter,
    SolidifiedTxSource,
    TokenTransfer,
    TransferLogs,
    TxReceipt,
    TxReceiptSource,
)

__all__ = [
    "BlockHeader",
    "BlockLogsSource",
    "BlockNotFound",
    "BroadcastRejected",
    "ChainClient",
    "ChainError",
    "ChainUnavailable",
    "FinalizedHeadSource",
    "RangeTooLarge",
    "RawTransactionSender",
    "RecipientFilter",
    "SolidifiedTxSource",
    "TokenTransfer",
    "TransferLogs",
    "TxReceipt",
    "TxReceiptSource",
]
