"""Local EVM devnets for tests and demos: one anvil process per network, with test
stablecoins (and a look-alike) deployed, and the files that point the services at it.

    uv run python devnet/devnet.py start [--network all|ethereum|bsc|tron] [--block-time 2]
    uv run python devnet/devnet.py status | stop [--network …]
    uv run python devnet/devnet.py pay --to 0x… --amount 12.5 [--asset USDT] [--network bsc]

Without `--network`, start/status/stop act on every network: Ethereum (chain id 31337,
port 8545, 6-decimal tokens) and BSC (chain id 31338, port 8546, 18-decimal tokens);
`pay` defaults to Ethereum. With several networks, `--port P` is the first network's port
and the next ones follow (P+1, …). `--network tron` (also part of "all"; port 8090 by
default) is the Tron devnet of devnet/tron, which `devnet.tron.cli` starts and stops.

State lives in devnet/.state/: `<network>.pid`, `<network>.log`, `<network>.json` (RPC URL,
chain id, token addresses, dev accounts) and `assets.json`, the asset-registry overlay for
STABLEGATE_ASSETS_FILE with one entry per running network. The test fixtures import the
same functions (`start_anvil`, `deploy_tokens`, `assets_overlay`, `send_token_transfer`).
This is test and demo tooling: no gateway code imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx
from eth_abi.abi import encode
from eth_utils.abi import function_signature_to_4byte_selector

try:
    from devnet.state import StateFiles, update_assets_file, write_json
except ModuleNotFoundError:  # run as a script (python devnet/devnet.py): devnet/ is on the path
    from state import StateFiles, update_assets_file, write_json  # type: ignore[no-redef]

DEVNET_DIR = Path(__file__).resolve().parent
ANVIL_BIN = DEVNET_DIR / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
BUILD_DIR = DEVNET_DIR / "build"
STATE_DIR = DEVNET_DIR / ".state"


class DevnetError(Exception):
    """The devnet could not be started, deployed or reached; the message says what to do."""


@dataclass(frozen=True)
class NetworkSpec:
    """One local chain. BSC-like chains differ only in these values (18-decimal tokens)."""

    name: str
    chain_id: int
    port: int
    decimals: int
    native_symbol: str
    display_name: str
    confirmations: int = 3
    # The deployer's nonce before the first deploy. Contract addresses follow from
    # (deployer, nonce), so distinct nonces give each chain its own token addresses, as
    # on mainnet: code that finds a token by contract alone, without the network, fails.
    deploy_nonce: int = 0


NETWORKS = {
    "ethereum": NetworkSpec("ethereum", 31337, 8545, 6, "ETH", "Ethereum devnet (ERC-20)"),
    "bsc": NetworkSpec(
        "bsc", 31338, 8546, 18, "BNB", "BNB Smart Chain devnet (BEP-20)", deploy_nonce=100
    ),
}


@dataclass(frozen=True)
class DeployedTokens:
    usdt: str
    usdc: str
    lookalike: str  # "Tether USD"/"USDT", same decimals, emits Transfer with no balances
    decimals: int
    deployer: str
    accounts: tuple[str, ...]


@dataclass
class AnvilProcess:
    pid: int
    port: int
    chain_id: int
    log_path: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return _is_anvil(self.pid)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; only ever this process id."""
        if not self.alive():
            return
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                return
            if self.popen is None and not _is_anvil(self.pid):
                return
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout)

    def pause(self) -> None:
        """Freeze the node (SIGSTOP): it keeps its chain but answers nothing, so clients
        time out as they would on a dead node. `resume()` continues it."""
        if self.alive():
            os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGCONT)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# --- JSON-RPC -------------------------------------------------------------------------------


class Rpc:
    """A small synchronous JSON-RPC client; errors become DevnetError with the node's message."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self._http = httpx.Client(timeout=timeout)
        self._next_id = 0

    def __enter__(self) -> Rpc:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.close()

    def call(self, method: str, *params: Any) -> Any:
        self._next_id += 1
        payload = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": list(params)}
        try:
            body = self._http.post(self.url, json=payload).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DevnetError(f"{method} to {self.url} failed: {exc!r}") from exc
        if "error" in body:
            raise DevnetError(f"{method} failed: {body['error']}")
        return body["result"]


def encode_call(signature: str, *args: Any) -> str:
    """Calldata for `signature` such as "transfer(address,uint256)" (flat argument types only)."""
    types = signature[signature.index("(") + 1 : -1]
    arg_types = [t for t in types.split(",") if t]
    selector: bytes = function_signature_to_4byte_selector(signature)
    return "0x" + selector.hex() + encode(arg_types, list(args)).hex()


def wait_for_receipts(rpc: Rpc, tx_hashes: Sequence[str], timeout: float = 60.0) -> list[Any]:
    """Receipts in order; raises if a transaction reverted or is not mined in time."""
    receipts: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while len(receipts) < len(tx_hashes):
        for tx_hash in tx_hashes:
            if tx_hash not in receipts:
                receipt = rpc.call("eth_getTransactionReceipt", tx_hash)
                if receipt is not None:
                    receipts[tx_hash] = receipt
        if len(receipts) < len(tx_hashes):
            if time.monotonic() > deadline:
                raise DevnetError(f"transactions not mined after {timeout}s (is mining on?)")
            time.sleep(0.05)
    for tx_hash, receipt in receipts.items():
        if receipt["status"] != "0x1":
            raise DevnetError(f"transaction {tx_hash} reverted")
    return [receipts[h] for h in tx_hashes]


def send_token_transfer(
    rpc_url: str, token: str, to: str, amount_base_units: int, sender: str
) -> str:
    """Send `transfer(to, amount)` from an unlocked dev account; returns the tx hash."""
    with Rpc(rpc_url) as rpc:
        data = encode_call("transfer(address,uint256)", to, amount_base_units)
        tx_hash: str = rpc.call("eth_sendTransaction", {"from": sender, "to": token, "data": data})
        return tx_hash


# --- anvil ----------------------------------------------------------------------------------


def anvil_binary() -> Path:
    if not ANVIL_BIN.exists():
        raise DevnetError(f"{ANVIL_BIN} is missing: run `npm ci --prefix devnet` first")
    return ANVIL_BIN


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_anvil(
    port: int,
    chain_id: int,
    *,
    block_time: float | None = None,
    log_path: Path | None = None,
    detach: bool = False,
    startup_timeout: float = 30.0,
    extra_args: Sequence[str] = (),
) -> AnvilProcess:
    """Start anvil on 127.0.0.1:`port` and return once it answers with `chain_id`.

    `detach` puts it in its own session so it outlives the command that started it (the
    CLI); tests keep it attached and stop it themselves. Without `block_time` anvil mines
    one block per transaction (automine).
    """
    binary = anvil_binary()
    if port_in_use(port):
        raise DevnetError(f"port {port} is already in use")
    log_path = log_path or STATE_DIR / f"anvil-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    args = [str(binary), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--chain-id", str(chain_id), "--silent", *extra_args]
    if block_time:
        args += ["--block-time", str(block_time)]
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=detach,
        )
    anvil = AnvilProcess(popen.pid, port, chain_id, log_path, popen)
    try:
        _wait_until_ready(anvil, startup_timeout)
    except DevnetError:
        anvil.stop()
        raise
    return anvil


def _wait_until_ready(anvil: AnvilProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as http:
        while time.monotonic() < deadline:
            if not anvil.alive():
                raise DevnetError(f"anvil exited at start-up; its log:\n{anvil.log_tail()}")
            try:
                payload = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
                answer = http.post(anvil.rpc_url, json=payload).json()
            except (httpx.HTTPError, ValueError):
                time.sleep(0.05)
                continue
            if int(answer["result"], 16) != anvil.chain_id:
                raise DevnetError(f"port {anvil.port} answers chain id {answer['result']}")
            return
    raise DevnetError(f"anvil did not answer within {timeout}s; its log:\n{anvil.log_tail()}")


def _is_anvil(pid: int) -> bool:
    """True when `pid` runs anvil, so a stale pid file never makes us signal a stranger."""
    try:
        return b"anvil" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


# --- contracts ------------------------------------------------------------------------------


def ensure_compiled() -> None:
    """Compile devnet/contracts (cached by source hash, so usually a no-op)."""
    try:
        subprocess.run(
            ["node", str(DEVNET_DIR / "compile.mjs")],
            check=True,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError as exc:
        raise DevnetError("node is not installed (needed to compile the test tokens)") from exc
    except subprocess.CalledProcessError as exc:
        raise DevnetError(f"compiling the contracts failed:\n{exc.stderr}") from exc


def artifact(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((BUILD_DIR / f"{name}.json").read_text())
    return data


def _deploy(rpc: Rpc, sender: str, contract: str, name: str, symbol: str, decimals: int) -> str:
    bytecode = artifact(contract)["bytecode"]
    args = encode(["string", "string", "uint8"], [name, symbol, decimals]).hex()
    tx_hash: str = rpc.call("eth_sendTransaction", {"from": sender, "data": bytecode + args})
    return tx_hash


def deploy_tokens(
    rpc_url: str,
    *,
    decimals: int = 6,
    holders: int = 5,
    mint_whole_tokens: int = 1_000_000,
    timeout: float = 60.0,
    deploy_nonce: int = 0,
) -> DeployedTokens:
    """Deploy USDT, USDC and a look-alike USDT from dev account 0 (starting at
    `deploy_nonce`) and mint `mint_whole_tokens` of USDT and USDC to each of the first
    `holders` dev accounts."""
    ensure_compiled()
    with Rpc(rpc_url) as rpc:
        accounts = tuple(a.lower() for a in rpc.call("eth_accounts"))
        deployer = accounts[0]
        if deploy_nonce:
            rpc.call("anvil_setNonce", deployer, hex(deploy_nonce))
        # Sent one by one: anvil runs a JSON-RPC batch concurrently and then assigns
        # clashing nonces (chains.md §2.6).
        deploys = [
            _deploy(rpc, deployer, "TestStablecoin", "Tether USD", "USDT", decimals),
            _deploy(rpc, deployer, "TestStablecoin", "USD Coin", "USDC", decimals),
            _deploy(rpc, deployer, "LookAlikeToken", "Tether USD", "USDT", decimals),
        ]
        receipts = wait_for_receipts(rpc, deploys, timeout)
        usdt, usdc, lookalike = (r["contractAddress"].lower() for r in receipts)
        amount = mint_whole_tokens * 10**decimals
        mints = [
            rpc.call(
                "eth_sendTransaction",
                {
                    "from": deployer,
                    "to": token,
                    "data": encode_call("mint(address,uint256)", holder, amount),
                },
            )
            for token in (usdt, usdc)
            for holder in accounts[:holders]
        ]
        wait_for_receipts(rpc, mints, timeout)
    return DeployedTokens(usdt, usdc, lookalike, decimals, deployer, accounts)


# --- state files ----------------------------------------------------------------------------


def assets_overlay(spec: NetworkSpec, tokens: DeployedTokens) -> dict[str, Any]:
    """The `AssetRegistry.from_mapping` overlay for this network (the look-alike is absent)."""
    return {
        "networks": {
            spec.name: {
                "family": "evm",
                "chain_id": spec.chain_id,
                "confirmations": spec.confirmations,
                "native_symbol": spec.native_symbol,
                "display_name": spec.display_name,
                "assets": {
                    "USDT": {"contract": tokens.usdt, "decimals": tokens.decimals},
                    "USDC": {"contract": tokens.usdc, "decimals": tokens.decimals},
                },
            }
        }
    }


def network_state(spec: NetworkSpec, anvil: AnvilProcess, tokens: DeployedTokens) -> dict[str, Any]:
    return {
        "network": spec.name,
        "rpc_url": anvil.rpc_url,
        "chain_id": spec.chain_id,
        "pid": anvil.pid,
        "log": str(anvil.log_path),
        "spec": asdict(spec),
        "decimals": tokens.decimals,
        "tokens": {"USDT": tokens.usdt, "USDC": tokens.usdc, "LOOKALIKE": tokens.lookalike},
        "deployer": tokens.deployer,
        "accounts": list(tokens.accounts),
    }


def running_anvil(files: StateFiles, spec: NetworkSpec) -> AnvilProcess | None:
    """The anvil that `start` left for this network, if it is still alive."""
    try:
        pid = int(files.pid.read_text().strip())
    except (OSError, ValueError):
        return None
    port = files.read_state().get("spec", {}).get("port", spec.port)
    anvil = AnvilProcess(pid, port, spec.chain_id, files.log)
    return anvil if anvil.alive() else None


# --- CLI ------------------------------------------------------------------------------------


def cmd_start(spec: NetworkSpec, files: StateFiles, block_time: float | None) -> int:
    if (anvil := running_anvil(files, spec)) is not None and files.state.exists():
        print(f"{spec.name} devnet already running (pid {anvil.pid}) at {anvil.rpc_url}")
        return 0
    if anvil is not None:
        anvil.stop()  # alive but never finished deploying: start clean
    files.pid.unlink(missing_ok=True)
    files.log.unlink(missing_ok=True)
    anvil = start_anvil(
        spec.port, spec.chain_id, block_time=block_time, log_path=files.log, detach=True
    )
    files.pid.write_text(f"{anvil.pid}\n")
    try:
        tokens = deploy_tokens(
            anvil.rpc_url, decimals=spec.decimals, deploy_nonce=spec.deploy_nonce
        )
    except DevnetError:
        anvil.stop()
        files.pid.unlink(missing_ok=True)
        raise
    write_json(files.state, network_state(spec, anvil, tokens))
    update_assets_file(files.assets, spec.name, assets_overlay(spec, tokens))
    print(f"{spec.name} devnet (chain id {spec.chain_id}) at {anvil.rpc_url}, pid {anvil.pid}")
    print(f"  USDT {tokens.usdt}\n  USDC {tokens.usdc}\n  look-alike USDT {tokens.lookalike}")
    print(f"  export STABLEGATE_ASSETS_FILE={files.assets}")
    return 0


def cmd_stop(spec: NetworkSpec, files: StateFiles) -> int:
    anvil = running_anvil(files, spec)
    if anvil is not None:
        anvil.stop()
        print(f"stopped {spec.name} devnet (pid {anvil.pid})")
    else:
        print(f"{spec.name} devnet is not running")
    files.pid.unlink(missing_ok=True)
    files.state.unlink(missing_ok=True)
    update_assets_file(files.assets, spec.name, None)
    return 0


def cmd_status(spec: NetworkSpec, files: StateFiles) -> int:
    """Exit 0 when running, 3 when not (the LSB convention for `status`)."""
    anvil = running_anvil(files, spec)
    if anvil is None:
        print(f"{spec.name} devnet is not running")
        return 3
    with Rpc(anvil.rpc_url, timeout=2.0) as rpc:
        head = int(rpc.call("eth_blockNumber"), 16)
    print(f"{spec.name} devnet running (pid {anvil.pid}) at {anvil.rpc_url}, head block {head}")
    for symbol, address in files.read_state().get("tokens", {}).items():
        print(f"  {symbol}: {address}")
    return 0


def cmd_pay(
    spec: NetworkSpec, files: StateFiles, to: str, amount: str, asset: str, account: int
) -> int:
    state = files.read_state()
    if running_anvil(files, spec) is None or not state:
        raise DevnetError(f"{spec.name} devnet is not running: `devnet.py start` first")
    try:
        units = Decimal(amount).scaleb(state["decimals"])
    except InvalidOperation as exc:
        raise DevnetError(f"--amount {amount!r} is not a decimal number") from exc
    if units != units.to_integral_value() or units <= 0:
        raise DevnetError(
            f"--amount {amount} is not a positive amount with at most {state['decimals']} decimals"
        )
    sender = state["accounts"][account]
    tx_hash = send_token_transfer(state["rpc_url"], state["tokens"][asset], to, int(units), sender)
    print(tx_hash)
    return 0


ALL = "all"
TRON = "tron"  # not an anvil: devnet/tron serves the java-tron API (devnet.tron.cli)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="devnet.py", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status", "pay"])
    parser.add_argument(
        "--network",
        choices=[*sorted(NETWORKS), TRON, ALL],
        help="default: all networks (pay: ethereum)",
    )
    parser.add_argument("--port", type=int, help="default: 8545 ethereum, 8546 bsc")
    parser.add_argument("--chain-id", type=int, help="default: 31337 ethereum, 31338 bsc")
    parser.add_argument("--confirmations", type=int, help="written to assets.json (default 3)")
    parser.add_argument(
        "--block-time",
        type=float,
        default=2.0,
        help="seconds between blocks, so confirmations accrue in demos; 0 = one block per tx",
    )
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--to", help="pay: recipient address")
    parser.add_argument("--amount", help="pay: amount in whole tokens, e.g. 12.5")
    parser.add_argument("--asset", choices=["USDT", "USDC", "LOOKALIKE"], default="USDT")
    parser.add_argument("--from-account", type=int, default=1, help="pay: dev account index")
    return parser


def selected_specs(args: argparse.Namespace) -> list[NetworkSpec]:
    """The networks a command acts on, with the command line's overrides applied."""
    default = "ethereum" if args.command == "pay" else ALL
    chosen = args.network or default
    names = list(NETWORKS) if chosen == ALL else [chosen]
    if args.command == "pay" and len(names) > 1:
        raise DevnetError("pay needs one --network")
    if args.chain_id is not None and len(names) > 1:
        raise DevnetError("--chain-id needs one --network (each chain has its own id)")
    specs = []
    for offset, name in enumerate(names):
        overrides = {
            "port": None if args.port is None else args.port + offset,
            "chain_id": args.chain_id,
            "confirmations": args.confirmations,
        }
        specs.append(
            replace(NETWORKS[name], **{k: v for k, v in overrides.items() if v is not None})
        )
    return specs


def _run(args: argparse.Namespace) -> int:
    if args.network == TRON:
        return _run_tron(args)
    specs = selected_specs(args)
    if args.command == "pay":
        if not args.to or not args.amount:
            raise DevnetError("pay needs --to and --amount")
        [spec] = specs
        files = StateFiles(args.state_dir, spec.name)
        return cmd_pay(spec, files, args.to, args.amount, args.asset, args.from_account)
    codes = []
    for spec in specs:
        files = StateFiles(args.state_dir, spec.name)
        if args.command == "start":
            codes.append(cmd_start(spec, files, args.block_time or None))
        elif args.command == "stop":
            codes.append(cmd_stop(spec, files))
        else:
            codes.append(cmd_status(spec, files))
    if args.network in (None, ALL):
        codes.append(_run_tron(args))
    return max(codes)


def _run_tron(args: argparse.Namespace) -> int:
    """Delegate to the Tron devnet's own tool, run from the repo root so it imports as a
    package even when this file runs as a script."""
    command = [sys.executable, "-m", "devnet.tron.cli", args.command]
    command += ["--state-dir", str(args.state_dir.resolve()), "--block-time", str(args.block_time)]
    if args.port is not None:  # with all networks, Tron's port follows the anvils'
        port = args.port if args.network == TRON else args.port + len(NETWORKS)
        command += ["--port", str(port)]
    if args.confirmations is not None:
        command += ["--depth", str(args.confirmations)]
    if args.command == "pay":
        command += ["--to", args.to or "", "--amount", args.amount or "", "--asset", args.asset]
        command += ["--from-account", str(args.from_account)]
    return subprocess.run(command, cwd=DEVNET_DIR.parent, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except DevnetError as exc:
        print(f"devnet: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
