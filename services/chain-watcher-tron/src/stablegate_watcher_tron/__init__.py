"""The Tron watcher: the shared watcher engine over the java-tron HTTP client
(`stablegate_common.chains.tron.TronClient`), network `tron`, schema `watcher_tron`.
Transfers are confirmed once their block is solidified."""
