"""The devnets' roles inside containers (docker-compose.yml), over the devnet's own code.

`devnet/devnet.py` runs the chains as local processes on 127.0.0.1; in Compose every chain
is a container that the services reach by name, so this entry point adds what that needs:

    devnet_node.py tron --port 8090 --state-dir /devnet-state --advertise http://tron:8090/
    devnet_node.py deploy --state-dir /devnet-state ethereum=http://ethereum:8545 bsc=…
        [--expect assets.json]
    devnet_node.py probe http://127.0.0.1:8545 --jsonrpc [--file /devnet-state/x.json]

`tron` serves the Tron devnet on every interface; `deploy` is a one-shot step that deploys
the test tokens on anvils that already run (started as `anvil --host 0.0.0.0 …`) and
writes the same `<network>.json` and `assets.json` as `devnet.py start`, skipping a chain
whose tokens are still there (with `--expect`, it fails unless the tokens landed at the
addresses a static asset file names: Kubernetes' dev overlay ships one, because its pods
share no volume); `probe` is the containers' health check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

# The image puts the repository root on sys.path (PYTHONPATH), so `devnet` imports as the
# package it is in the workspace.
from devnet.devnet import (
    NETWORKS,
    DevnetError,
    Rpc,
    assets_overlay,
    deploy_tokens,
)
from devnet.state import StateFiles, update_assets_file, write_json


def serve_tron(port: int, block_time: float, depth: int, state_dir: Path, advertise: str) -> int:
    from devnet.tron.app import DevnetServer
    from devnet.tron.genesis import DevnetConfig
    from devnet.tron.node import DevnetNode
    from devnet.tron.server import write_state

    async def serve() -> None:
        config = DevnetConfig(block_time=block_time, solidification_depth=depth)
        server = DevnetServer(DevnetNode(config), port, host="0.0.0.0")
        await server.start()
        write_state(state_dir, server.node.describe(advertise), server.node.assets_overlay())
        print(f"tron devnet on 0.0.0.0:{port}, advertised as {advertise}", flush=True)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopped.set)
        await stopped.wait()
        await server.close()

    asyncio.run(serve())
    return 0


def deploy(nodes: Sequence[str], state_dir: Path, timeout: float, expect: Path | None) -> int:
    """Deploy the tokens on each `name=url` node (once per chain) and record them."""
    expected = json.loads(expect.read_text())["networks"] if expect else None
    for node in nodes:
        name, _, url = node.partition("=")
        if name not in NETWORKS or not url:
            raise DevnetError(f"{node!r}: expected NETWORK=URL with NETWORK in {sorted(NETWORKS)}")
        spec = NETWORKS[name]
        files = StateFiles(state_dir, name)
        _wait_for_chain(url, spec.chain_id, timeout)
        state = files.read_state()
        if state and _has_code(url, state["tokens"]["USDT"]):
            print(f"{name}: tokens already deployed at {state['tokens']['USDT']}")
            continue
        tokens = deploy_tokens(url, decimals=spec.decimals, deploy_nonce=spec.deploy_nonce)
        write_json(
            files.state,
            {
                "network": name,
                "rpc_url": url,
                "chain_id": spec.chain_id,
                "spec": asdict(spec),
                "decimals": tokens.decimals,
                "tokens": {"USDT": tokens.usdt, "USDC": tokens.usdc, "LOOKALIKE": tokens.lookalike},
                "deployer": tokens.deployer,
                "accounts": list(tokens.accounts),
            },
        )
        overlay = assets_overlay(spec, tokens)
        update_assets_file(files.assets, name, overlay)
        print(f"{name}: USDT {tokens.usdt}, USDC {tokens.usdc} (chain id {spec.chain_id})")
        if expected is not None and expected.get(name) != overlay["networks"][name]:
            raise DevnetError(
                f"{name}: the tokens landed at other addresses than {expect} says; "
                f"write this entry there instead: {json.dumps(overlay['networks'][name])}"
            )
    return 0


def _wait_for_chain(url: str, chain_id: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with Rpc(url, timeout=2.0) as rpc:
                answered = int(rpc.call("eth_chainId"), 16)
        except DevnetError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
            continue
        if answered != chain_id:
            raise DevnetError(f"{url} answers chain id {answered}, expected {chain_id}")
        return


def _has_code(url: str, address: str) -> bool:
    """A restarted anvil forgets its chain: then the recorded tokens must be deployed again."""
    with Rpc(url, timeout=5.0) as rpc:
        code: str = rpc.call("eth_getCode", address, "latest")
    return code not in ("0x", "0x0", "")


def probe(url: str, jsonrpc: bool, file: Path | None) -> int:
    """Exit 0 when `url` answers (and `file` exists): the containers' health check."""
    if file is not None and not file.exists():
        return 1
    data, headers = None, {}
    if jsonrpc:
        payload = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        data, headers = json.dumps(payload).encode(), {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - own URL
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="devnet_node.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    tron = commands.add_parser("tron", help="serve the Tron devnet on every interface")
    tron.add_argument("--port", type=int, default=8090)
    tron.add_argument("--block-time", type=float, default=3.0)
    tron.add_argument("--depth", type=int, default=19, help="solidification depth in blocks")
    tron.add_argument("--state-dir", type=Path, required=True)
    tron.add_argument("--advertise", required=True, help="the URL other containers use")
    dep = commands.add_parser("deploy", help="deploy the test tokens on running anvils")
    dep.add_argument("nodes", nargs="+", metavar="NETWORK=URL")
    dep.add_argument("--state-dir", type=Path, required=True)
    dep.add_argument("--timeout", type=float, default=60.0)
    dep.add_argument("--expect", type=Path, help="fail unless assets.json matches this file")
    check = commands.add_parser("probe", help="health check: does URL answer?")
    check.add_argument("url")
    check.add_argument("--jsonrpc", action="store_true", help="POST eth_chainId")
    check.add_argument("--file", type=Path, help="also require this file to exist")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "tron":
            return serve_tron(
                args.port, args.block_time, args.depth, args.state_dir, args.advertise
            )
        if args.command == "deploy":
            return deploy(args.nodes, args.state_dir, args.timeout, args.expect)
        return probe(args.url, args.jsonrpc, args.file)
    except DevnetError as exc:
        print(f"devnet: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
