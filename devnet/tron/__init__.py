"""A Tron devnet: an HTTP server speaking the java-tron API that Stablegate's Tron client
and tronpy use, with blocks on a timer, TRX and TRC-20 balances, signature checks, energy
and bandwidth fees paid by Stake 2.0 resources or burnt TRX, a solidity view, and test-only
controls (mine, fork, fail, fund, stake, delegate, set prices).

Modules: `encoding` (addresses, protobuf, txID, signatures), `protobuf` (reading a
serialized Transaction back), `tokens` (TRC-20 contracts in Python), `ledger` (state and
fees), `resources` (Stake 2.0: stake, delegation, energy and bandwidth limits, prices),
`transactions`, `chain` (blocks, pool, forks), `render`, `api` and `api_resources`
(java-tron JSON), `node` (test operations), `app` (HTTP server),
`server` (`start_tron_devnet`, the thread handle `TronDevnet`, and the foreground
command line), `cli` (the background process `make devnet` runs). Test and demo tooling:
no gateway code imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devnet.tron.genesis import DevAccount, DevnetConfig
    from devnet.tron.server import TronDevnet, start_tron_devnet

__all__ = ["DevAccount", "DevnetConfig", "TronDevnet", "start_tron_devnet"]


def __getattr__(name: str) -> Any:
    # Resolved on first use, so `python -m devnet.tron.server` does not import the server
    # module before running it (runpy warns), and `cli` does not load what it never uses.
    if name in ("DevAccount", "DevnetConfig"):
        from devnet.tron import genesis

        return getattr(genesis, name)
    if name in ("TronDevnet", "start_tron_devnet"):
        from devnet.tron import server

        return getattr(server, name)
    raise AttributeError(f"module 'devnet.tron' has no attribute {name!r}")
