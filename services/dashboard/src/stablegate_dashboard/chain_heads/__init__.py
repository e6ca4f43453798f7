"""The chain-head read model: per network, the newest head and scanned block a watcher
reported (`chain.head`), from which the dashboard shows watcher lag."""
