"""The BNB Smart Chain watcher: the shared watcher engine over the EVM client in
proof-of-authority mode, network `bsc`, schema `watcher_bsc`."""
