"""The Tron watcher. Not built yet: it comes with the multi-chain issue."""
