"""The BNB Smart Chain watcher. Not built yet: it comes with the multi-chain issue."""
