"""Start, stop, query and pay on the Tron devnet as a background process; what
`devnet/devnet.py … --network tron` (and `make devnet`) runs:

    uv run python -m devnet.tron.cli start [--port 8090] [--block-time 3] [--depth 19]
    uv run python -m devnet.tron.cli status | stop
    uv run python -m devnet.tron.cli pay --to T… --amount 12.5 [--asset USDT]

State lives in devnet/.state/: `tron.pid`, `tron.log`, `tron.json` (written by the server
once it listens) and the `tron` entry of `assets.json`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

import httpx

from devnet.devnet import STATE_DIR, DevnetError, port_in_use
from devnet.state import StateFiles, update_assets_file

REPO_DIR = Path(__file__).resolve().parents[2]
SERVER_MODULE = "devnet.tron.server"
DEFAULT_PORT = 8090


def running_pid(files: StateFiles) -> int | None:
    """The pid `start` left, if that process is still the devnet (never a stranger's)."""
    try:
        pid = int(files.pid.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if SERVER_MODULE.encode() in cmdline else None


def cmd_start(files: StateFiles, port: int, block_time: float, depth: int) -> int:
    if running_pid(files) is not None and files.state.exists():
        print(f"tron devnet already running at {files.read_state()['http_url']}")
        return 0
    cmd_stop(files, quiet=True)
    if port_in_use(port):
        raise DevnetError(f"port {port} is already in use")
    args = [sys.executable, "-m", SERVER_MODULE, "--port", str(port)]
    args += ["--block-time", str(block_time), "--depth", str(depth)]
    args += ["--state-dir", str(files.directory)]
    files.directory.mkdir(parents=True, exist_ok=True)
    with files.log.open("ab") as log:
        process = subprocess.Popen(
            args,
            cwd=REPO_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this command
        )
    files.pid.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + 30
    while not files.state.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            cmd_stop(files, quiet=True)
            tail = files.log.read_text(errors="replace")[-2000:]
            raise DevnetError(f"the Tron devnet did not start; its log:\n{tail}")
        time.sleep(0.05)
    state = files.read_state()
    print(f"tron devnet at {state['http_url']}, pid {process.pid}")
    for symbol, address in state["tokens"].items():
        print(f"  {symbol} {address}")
    return 0


def cmd_stop(files: StateFiles, *, quiet: bool = False) -> int:
    pid = running_pid(files)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while running_pid(files) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if running_pid(files) is not None:
            os.kill(pid, signal.SIGKILL)
    if not quiet:
        print("stopped tron devnet" if pid else "tron devnet is not running")
    files.pid.unlink(missing_ok=True)
    files.state.unlink(missing_ok=True)
    update_assets_file(files.assets, "tron", None)
    return 0


def cmd_status(files: StateFiles) -> int:
    """Exit 0 when running, 3 when not (the LSB convention for `status`)."""
    if running_pid(files) is None or not files.state.exists():
        print("tron devnet is not running")
        return 3
    url = files.read_state()["http_url"]
    status = httpx.post(url + "_devnet/status", timeout=5).json()["status"]
    print(f"tron devnet running at {url}, head block {status['head']}, solid {status['solid']}")
    return 0


def cmd_pay(files: StateFiles, to: str, amount: str, asset: str, account: int) -> int:
    if running_pid(files) is None or not files.state.exists():
        raise DevnetError("the Tron devnet is not running: start it first")
    state = files.read_state()
    try:
        units = Decimal(amount).scaleb(state["decimals"])
    except InvalidOperation as exc:
        raise DevnetError(f"--amount {amount!r} is not a decimal number") from exc
    if units != units.to_integral_value() or units <= 0:
        raise DevnetError(f"--amount {amount} is not a positive amount with 6 decimals at most")
    body = {"from": account, "to": to, "amount": int(units), "token": asset}
    answer = httpx.post(state["http_url"] + "_devnet/transfer", json=body, timeout=10).json()
    if "error" in answer:
        raise DevnetError(answer["error"])
    print(answer["txid"])
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="devnet.tron.cli", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status", "pay"])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--block-time", type=float, default=3.0)
    parser.add_argument("--depth", type=int, default=19, help="solidification depth")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR)
    parser.add_argument("--to", help="pay: recipient (base58 T…)")
    parser.add_argument("--amount", help="pay: whole tokens, e.g. 12.5")
    parser.add_argument("--asset", choices=["USDT", "USDC", "LOOKALIKE"], default="USDT")
    parser.add_argument("--from-account", type=int, default=1, help="pay: dev account index")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    files = StateFiles(args.state_dir, "tron")
    try:
        if args.command == "start":
            return cmd_start(files, args.port, args.block_time, args.depth)
        if args.command == "stop":
            return cmd_stop(files)
        if args.command == "status":
            return cmd_status(files)
        if not args.to or not args.amount:
            raise DevnetError("pay needs --to and --amount")
        return cmd_pay(files, args.to, args.amount, args.asset, args.from_account)
    except DevnetError as exc:
        print(f"devnet: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
