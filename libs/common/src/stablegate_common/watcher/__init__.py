"""The chain watcher engine, shared by every watcher service (Ethereum, BSC, Tron).

It owns a network's scan cursor, the block hashes of the reorg window, the watch set of
deposit addresses and the transfers observed to them, and publishes chain facts
(`transfer.detected|confirmed|reverted`, `chain.head`) through the outbox. It decides
nothing about payments: the gateway interprets the facts.

Parts: `engine.WatcherEngine` (one scan tick), `identity` (which chain the state belongs
to), `runner.ScannerLoop` (the loop, its lock and readiness), `watchset.WatchSetConsumer`
(announced addresses), `service` (assembly of a watcher service), `models` and
`migrations` (tables).
"""

from stablegate_common.watcher.config import (
    EngineConfig,
    WatcherServiceSettings,
    WatcherSettings,
)
from stablegate_common.watcher.engine import TokenDecimalsMismatch, WatcherEngine
from stablegate_common.watcher.identity import ChainChanged, ChainIdMismatch
from stablegate_common.watcher.runner import ScannerLoop, WatcherNotReady
from stablegate_common.watcher.watchset import WatchSetConsumer

__all__ = [
    "ChainChanged",
    "ChainIdMismatch",
    "EngineConfig",
    "ScannerLoop",
    "TokenDecimalsMismatch",
    "WatchSetConsumer",
    "WatcherEngine",
    "WatcherNotReady",
    "WatcherServiceSettings",
    "WatcherSettings",
]
