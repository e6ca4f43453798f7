"""The Ethereum watcher: the shared watcher engine over the EVM client, network `ethereum`,
schema `watcher_ethereum`."""
