"""Run the Tron devnet: in a background thread of the calling process (tests), or as its
own process (`make devnet`):

    uv run python -m devnet.tron.server --port 8090 [--block-time 3] [--depth 19]
        [--state-dir devnet/.state]

With `--state-dir` the process writes `tron.json` (URLs, token addresses, dev accounts
with their keys: test data only) and adds the `tron` network to the shared `assets.json`
overlay once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from devnet.tron.app import DevnetServer
from devnet.tron.chain import Block, ForkTxs
from devnet.tron.genesis import DevAccount, DevnetConfig
from devnet.tron.node import DevnetNode, FailMode, Sent

T = TypeVar("T")


class TronDevnet:
    """A devnet served from a thread with its own event loop, so blocking and async test
    code alike can use it. Every method runs on that loop and waits for the result."""

    def __init__(self, port: int, config: DevnetConfig | None = None) -> None:
        self.port = port
        self.config = config or DevnetConfig()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tron-devnet", daemon=True
        )
        self._server: DevnetServer | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> TronDevnet:
        self._thread.start()
        try:
            self._run(self._start())
        except BaseException:
            self.stop()
            raise
        return self

    async def _start(self) -> None:
        self._server = DevnetServer(DevnetNode(self.config), self.port)
        await self._server.start()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if self._server is not None:
            self._run(self._server.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> TronDevnet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=60)

    def call(self, fn: Callable[[DevnetNode], T]) -> T:
        """Run `fn(node)` on the devnet's loop: the only safe way to touch its state."""

        async def run() -> T:
            return fn(self.server.node)

        return self._run(run())

    @property
    def server(self) -> DevnetServer:
        if self._server is None:
            raise RuntimeError("the Tron devnet is not started")
        return self._server

    # --- what tests read --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL with the trailing slash tronpy's urljoin needs."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def accounts(self) -> list[DevAccount]:
        return self.server.node.accounts

    @property
    def faucet(self) -> DevAccount:
        return self.server.node.faucet

    @property
    def tokens(self) -> dict[str, str]:
        """Token symbol ("USDT", "USDC", "LOOKALIKE") → base58 contract address."""
        return dict(self.describe()["tokens"])

    def describe(self) -> dict[str, Any]:
        return self.call(lambda node: node.describe(self.url))

    def assets_overlay(self) -> dict[str, Any]:
        return self.call(lambda node: node.assets_overlay())

    def status(self) -> dict[str, Any]:
        return self.call(lambda node: node.status())

    def head(self) -> int:
        return self.call(lambda node: node.chain.head.number)

    def solid(self) -> int:
        return self.call(lambda node: node.chain.solid_number)

    def block_id(self, number: int) -> str:
        return self.call(lambda node: node.chain.blocks[number].block_id)

    def token_balance(self, token: str, holder: str, *, solid: bool = False) -> int:
        return self.call(lambda node: node.token_balance(token, holder, solid=solid))

    def trx_balance(self, holder: str, *, solid: bool = False) -> int:
        return self.call(lambda node: node.trx_balance(holder, solid=solid))

    # --- controls ---------------------------------------------------------------------------

    def mine(self, count: int = 1) -> list[int]:
        return self.call(lambda node: [b.number for b in node.mine(count)])

    def fork(self, depth: int, txs: ForkTxs = "keep", blocks: int | None = None) -> list[str]:
        """Replace the newest `depth` blocks; returns the new block ids."""
        new: list[Block] = self.call(lambda node: node.fork(depth, txs, blocks))
        return [b.block_id for b in new]

    def fund(
        self, to: str, *, trx_sun: int = 0, tokens: dict[str, int] | None = None, mine: bool = True
    ) -> list[Sent]:
        return self.call(lambda node: node.fund(to, trx_sun=trx_sun, tokens=tokens, mine=mine))

    def transfer(
        self,
        sender: str | int,
        to: str,
        amount: int,
        *,
        token: str = "USDT",
        fee_limit: int | None = None,
        fail: FailMode | None = None,
        keep_logs: bool = False,
        mine: bool = True,
    ) -> Sent:
        """A TRC-20 transfer from a dev account (index or address), "faucet", or any
        private key given as 64 hex digits."""

        def send(node: DevnetNode) -> Sent:
            return node.send_token(
                _key(node, sender),
                to,
                amount,
                token=token,
                fee_limit=fee_limit,
                fail=fail,
                keep_logs=keep_logs,
                mine=mine,
            )

        return self.call(send)

    def stake(
        self, sender: str | int, amount_sun: int, resource: str = "ENERGY", *, mine: bool = True
    ) -> Sent:
        """FreezeBalanceV2 from a dev account, "faucet", or a 64-hex-digit private key."""
        return self.call(
            lambda node: node.stake(_key(node, sender), amount_sun, resource, mine=mine)
        )

    def delegate(
        self,
        sender: str | int,
        to: str,
        amount_sun: int,
        resource: str = "ENERGY",
        *,
        undo: bool = False,
        mine: bool = True,
    ) -> Sent:
        """DelegateResource (or with `undo` UnDelegateResource) of staked TRX to `to`."""
        return self.call(
            lambda node: node.delegate(
                _key(node, sender), to, amount_sun, resource, undo=undo, mine=mine
            )
        )

    def set_prices(self, *, energy: int | None = None, bandwidth: int | None = None) -> None:
        self.call(lambda node: node.set_prices(energy=energy, bandwidth=bandwidth))

    def pause(self) -> None:
        self.call(lambda node: setattr(node, "paused", True))

    def resume(self) -> None:
        self.call(lambda node: setattr(node, "paused", False))

    def fail_next(
        self, path: str = "*", mode: str = "error", times: int = 1, seconds: float = 30.0
    ) -> None:
        self.call(lambda node: self.server.fail_next(path, mode, times, seconds))

    def down(self, mode: str = "503", seconds: float | None = None) -> None:
        self._run(self.server.down(mode, seconds))

    def up(self) -> None:
        self._run(self.server.up())


def _key(node: DevnetNode, sender: str | int) -> str:
    return sender if isinstance(sender, str) and len(sender) == 64 else node.key_for(sender)


def start_tron_devnet(port: int, config: DevnetConfig | None = None) -> TronDevnet:
    """Start a devnet on 127.0.0.1:`port` in a background thread; `stop()` it when done."""
    return TronDevnet(port, config).start()


# --- command line ---------------------------------------------------------------------------


async def serve(port: int, config: DevnetConfig, state_dir: Path | None) -> None:
    server = DevnetServer(DevnetNode(config), port)
    await server.start()
    if state_dir is not None:
        write_state(state_dir, server.node.describe(server.url), server.node.assets_overlay())
    print(f"tron devnet at {server.url} (head {server.node.chain.head.number})", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    await stopped.wait()
    await server.close()


def write_state(state_dir: Path, state: dict[str, Any], overlay: dict[str, Any]) -> None:
    """`tron.json` and the `tron` entry of the shared `assets.json`."""
    # Imported here: the thread mode (tests) never needs the anvil tooling.
    from devnet.state import update_assets_file, write_json

    write_json(state_dir / "tron.json", state)
    update_assets_file(state_dir / "assets.json", "tron", overlay)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="devnet.tron.server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--block-time",
        type=float,
        default=3.0,
        help="seconds between blocks; 0 = only when asked (/_devnet/mine)",
    )
    parser.add_argument("--depth", type=int, default=19, help="solidification depth in blocks")
    parser.add_argument("--state-dir", type=Path, help="write tron.json and assets.json here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = DevnetConfig(block_time=args.block_time, solidification_depth=args.depth)
    try:
        asyncio.run(serve(args.port, config, args.state_dir))
    except OSError as exc:
        print(f"tron devnet: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
