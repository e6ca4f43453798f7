"""Prometheus metrics of the watcher engine, labelled by network."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HEAD_BLOCK = Gauge("stablegate_watcher_head_block", "Newest block the node reports", ["network"])
SCANNED_BLOCK = Gauge(
    "stablegate_watcher_scanned_block", "Last block whose transfers are recorded", ["network"]
)
LAG_BLOCKS = Gauge(
    "stablegate_watcher_lag_blocks", "Blocks between the node's head and the cursor", ["network"]
)
WINDOW_BLOCKS = Gauge(
    "stablegate_watcher_window_blocks", "Current width of a log query, in blocks", ["network"]
)
WATCHED_ADDRESSES = Gauge(
    "stablegate_watcher_watched_addresses", "Addresses in the scanner's watch set", ["network"]
)
LEADER = Gauge(
    "stablegate_watcher_leader", "1 when this replica holds the scanner lock", ["network"]
)
TICK_SECONDS = Histogram(
    "stablegate_watcher_tick_seconds",
    "Duration of one scan tick, node calls and transaction included",
    ["network"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TRANSFERS = Counter(
    "stablegate_watcher_transfers_total",
    "Transfers to watched addresses by outcome (detected, confirmed, reverted, ignored)",
    ["network", "outcome"],
)
REORGS = Counter("stablegate_watcher_reorgs_total", "Reorgs under the cursor", ["network"])
DEEP_REORGS = Counter(
    "stablegate_watcher_deep_reorgs_total",
    "Reorgs deeper than the kept block hashes (rescanned from WATCHER_DEEP_REORG_RESCAN_BLOCKS "
    "below the oldest kept block)",
    ["network"],
)
REORG_DEPTH = Histogram(
    "stablegate_watcher_reorg_depth_blocks",
    "Blocks rolled back per reorg",
    ["network"],
    buckets=(1, 2, 3, 5, 8, 13, 21, 34, 64, 128, 256),
)
NODE_ERRORS = Counter(
    "stablegate_watcher_node_errors_total",
    "Failed node calls by kind (chain_unavailable, range_too_large, chain_error, …)",
    ["network", "kind"],
)
REJECTED_WINDOWS = Counter(
    "stablegate_watcher_rejected_windows_total",
    "Scan windows dropped because the chain changed while they were read",
    ["network", "reason"],
)
BACKFILLED_ADDRESSES = Counter(
    "stablegate_watcher_backfilled_addresses_total",
    "Newly watched addresses searched for in blocks scanned before they were announced",
    ["network"],
)
LOG_CHECKS = Counter(
    "stablegate_watcher_log_checks_total",
    "Blocks whose bloom promised Transfer logs that the log query did not return, by what "
    "the block-hash query found (recovered, missing: window read again, bloom_false_positive)",
    ["network", "outcome"],
)
