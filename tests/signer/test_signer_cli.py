"""The CLI end to end, as a subprocess: seed sources, confirmation, exit codes, no network,
and the serve mode over a Unix socket."""

from __future__ import annotations

import http.client
import json
import os
import pty
import re
import select
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stablegate_signer.documents import dump, load_response
from stablegate_signer.keys import SEED_ENV
from stablegate_signer.verify import verify_signed
from tests.signer.support import (
    ATTACKER,
    MNEMONIC,
    eth_tx,
    request,
    tron_trc20,
    tron_trx,
    write_policy,
)

BIN = str(Path(sys.executable).with_name("stablegate-signer"))
FORBIDDEN = ("stablegate_common", "web3", "tronpy", "httpx", "sqlalchemy", "aio_pika", "requests")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_policy(tmp_path)
    seed = tmp_path / "seed.txt"
    seed.write_text(MNEMONIC + "\n")
    seed.chmod(0o600)
    good = request(eth_tx(), tron_trc20(), tron_trx())
    (tmp_path / "request.json").write_text(dump(good))
    bad = request(eth_tx(destination={"address": ATTACKER, "path": None}))
    (tmp_path / "bad.json").write_text(dump(bad))
    return tmp_path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != SEED_ENV}
    return env | extra


def _run(args: list[str], cwd: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    kw.setdefault("env", _env())
    return subprocess.run(
        [BIN, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False, **kw
    )


SIGN = ["sign", "request.json", "-o", "signed.json", "--policy", "policy.toml"]


def _accepted(workdir: Path) -> None:
    from stablegate_signer.documents import load_request

    req = load_request((workdir / "request.json").read_text())
    assert len(verify_signed(req, load_response((workdir / "signed.json").read_text()))) == 3


def test_sign_with_seed_file_and_yes(workdir: Path) -> None:
    result = _run([*SIGN, "--seed-file", "seed.txt", "--yes"], workdir)
    assert result.returncode == 0, result.stderr
    _accepted(workdir)
    assert "abandon" not in result.stdout + result.stderr
    assert (workdir / "policy.state.json").exists()


def test_sign_with_seed_from_the_environment(workdir: Path) -> None:
    result = _run([*SIGN, "--yes"], workdir, env=_env(**{SEED_ENV: MNEMONIC}))
    assert result.returncode == 0, result.stderr
    _accepted(workdir)


def test_a_seed_file_readable_by_others_is_refused(workdir: Path) -> None:
    (workdir / "seed.txt").chmod(0o644)
    result = _run([*SIGN, "--seed-file", "seed.txt", "--yes"], workdir)
    assert result.returncode == 7
    assert "chmod 600" in result.stderr


def test_a_refusal_names_transaction_and_field_and_writes_nothing(workdir: Path) -> None:
    result = _run(["sign", "bad.json", "-o", "signed.json", "--policy", "policy.toml",
                   "--seed-file", "seed.txt", "--yes"], workdir)  # fmt: skip
    assert result.returncode == 5
    assert "transaction ot_eth_1, field destination.address" in result.stderr
    assert not (workdir / "signed.json").exists()


def test_a_tampered_request_is_refused_before_the_seed_is_read(workdir: Path) -> None:
    text = (workdir / "request.json").read_text().replace('"nonce": "0"', '"nonce": "5"', 1)
    assert text != (workdir / "request.json").read_text()
    (workdir / "request.json").write_text(text)
    result = _run([*SIGN, "--yes"], workdir)  # no seed given at all
    assert result.returncode == 3
    assert "digest" in result.stderr


def _pty_session(
    args: list[str], cwd: Path, answers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes]:
    """Run under a pseudo-terminal; on each expected prompt, type the answer."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: a controlling terminal, so getpass reads /dev/tty
        os.chdir(cwd)
        os.execve(BIN, [BIN, *args], _env())
    seen = b""
    deadline = time.monotonic() + 60
    try:
        for prompt, answer in answers:
            while prompt not in seen:
                assert time.monotonic() < deadline, seen
                ready, _, _ = select.select([fd], [], [], 1)
                if ready:
                    seen += os.read(fd, 4096)
            seen = seen.replace(prompt, b"<prompted>", 1)
            os.write(fd, answer)
        while True:
            ready, _, _ = select.select([fd], [], [], 1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), seen


def test_prompted_seed_and_confirmation_through_a_terminal(workdir: Path) -> None:
    code, output = _pty_session(
        SIGN,
        workdir,
        [(b"seed (input hidden): ", MNEMONIC.encode() + b"\n"), (b"to sign: ", b"yes\n")],
    )
    assert code == 0, output
    assert b"12.5 USDT" in output  # the summary was shown before the question
    assert b"abandon" not in output  # getpass did not echo the seed
    _accepted(workdir)


def test_answering_no_signs_nothing(workdir: Path) -> None:
    code, output = _pty_session(
        SIGN,
        workdir,
        [(b"seed (input hidden): ", MNEMONIC.encode() + b"\n"), (b"to sign: ", b"no\n")],
    )
    assert code == 6, output
    assert not (workdir / "signed.json").exists()
    assert not (workdir / "policy.state.json").exists()


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0, reason="needs root")
def test_signs_inside_a_network_namespace_without_network(workdir: Path) -> None:
    probe = subprocess.run(["unshare", "-n", "true"], check=False)
    if probe.returncode != 0:
        pytest.skip("unshare -n is not permitted here")
    result = subprocess.run(
        ["unshare", "-n", BIN, *SIGN, "--seed-file", "seed.txt", "--yes"],
        cwd=workdir, capture_output=True, text=True, timeout=60, check=False, env=_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    _accepted(workdir)


def test_signs_with_socket_creation_blocked_and_imports_nothing_networked(workdir: Path) -> None:
    script = f"""
import socket, sys
class Refused(socket.socket):
    def __init__(self, *a, **k):
        raise RuntimeError("the signer tried to open a socket")
def refuse(*a, **k):
    raise RuntimeError("the signer tried to connect")
socket.socket = Refused
socket.create_connection = refuse
socket.socketpair = refuse
from stablegate_signer import cli, server, verify
code = cli.main({[*SIGN, "--seed-file", "seed.txt", "--yes"]!r})
loaded = [m for m in {FORBIDDEN!r} if m in sys.modules]
print("loaded:", loaded)
sys.exit(code or (9 if loaded else 0))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=workdir, capture_output=True, text=True,
        timeout=60, check=False, env=_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "loaded: []" in result.stdout
    _accepted(workdir)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=30)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


@pytest.fixture
def served(workdir: Path) -> Iterator[Path]:
    sock = workdir / "signer.sock"
    proc = subprocess.Popen(
        [BIN, "serve", "--socket", str(sock), "--policy", "policy.toml", "--seed-file", "seed.txt"],
        cwd=workdir, env=_env(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _call(sock: Path, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    conn = _UnixConnection(sock)
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    return response.status, data


def test_serve_over_a_unix_socket(workdir: Path, served: Path) -> None:
    assert stat.S_IMODE(served.stat().st_mode) == 0o600
    assert _call(served, "GET", "/v1/health") == (200, {"status": "ok"})
    status, body = _call(served, "POST", "/v1/sign", (workdir / "request.json").read_bytes())
    assert status == 200, body
    (workdir / "signed.json").write_text(json.dumps(body))
    _accepted(workdir)
    status, body = _call(served, "POST", "/v1/sign", (workdir / "bad.json").read_bytes())
    assert status == 422
    assert body["error"]["code"] == "policy_violation"
    assert body["error"]["transaction"] == "ot_eth_1"
    assert body["error"]["field"] == "destination.address"
    status, body = _call(served, "POST", "/v1/sign", b'{"format": 1.5}')
    assert status == 400
    assert body["error"]["code"] == "invalid_document"


def test_address_and_xpub_commands_match_the_gateway_devnet_keys(workdir: Path) -> None:
    from stablegate_common.hd import DEVNET_EVM_XPUB, DEVNET_TRON_XPUB

    for network, xpub in (("ethereum", DEVNET_EVM_XPUB), ("tron", DEVNET_TRON_XPUB)):
        result = _run(["xpub", "--network", network, "--seed-file", "seed.txt"], workdir)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [f"m/44'/{60 if network == 'ethereum' else 195}'/0'", xpub]
    result = _run(
        ["address", "--network", "tron", "m/44'/195'/0'/0/0", "--seed-file", "seed.txt"], workdir
    )
    assert result.stdout.split() == ["m/44'/195'/0'/0/0", "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"]


def test_show_and_verify_commands(workdir: Path) -> None:
    shown = _run(["show", "request.json"], workdir)
    assert shown.returncode == 0
    assert "ot_tron_topup: fee_topup on tron: 1.1 TRX" in shown.stdout
    assert _run([*SIGN, "--seed-file", "seed.txt", "--yes"], workdir).returncode == 0
    assert _run(["verify", "request.json", "signed.json"], workdir).returncode == 0
    signed = json.loads((workdir / "signed.json").read_text())
    signed["transactions"][0]["tx_hash"] = "0x" + "1" * 64
    (workdir / "signed.json").write_text(json.dumps(signed))
    refused = _run(["verify", "request.json", "signed.json"], workdir)
    assert refused.returncode == 8
    assert "transaction ot_eth_1, field tx_hash" in refused.stderr


def test_listen_takes_loopback_only(workdir: Path) -> None:
    args = ["serve", "--policy", "policy.toml", "--seed-file", "seed.txt", "--listen"]
    refused = _run([*args, "0.0.0.0:0"], workdir)
    assert refused.returncode != 0
    assert "loopback" in refused.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    no_token = _run([*args, f"127.0.0.1:{port}"], workdir)
    assert no_token.returncode != 0
    assert "token" in no_token.stderr
    token = "t" * 40
    proc = subprocess.Popen(
        [BIN, *args, f"127.0.0.1:{port}", "--token-env", "SIGNER_TOKEN"],
        cwd=workdir, env=_env(SIGNER_TOKEN=token),
    )  # fmt: skip
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(method: str, headers: dict[str, str], body: bytes | None = None) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(method, "/v1/health" if method == "GET" else "/v1/sign", body, headers)
        status = conn.getresponse().status
        conn.close()
        return status

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert call("GET", auth) == 200
                break
            except ConnectionRefusedError:
                assert proc.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.05)
        body = (workdir / "request.json").read_bytes()
        assert call("POST", {"Content-Type": "application/json"}, body) == 401
        assert call("POST", auth | {"Authorization": "Bearer " + "x" * 40}, body) == 401
        assert call("POST", auth | {"Host": "evil.example:8080"}, body) == 403
        assert call("POST", auth | {"Content-Type": "text/plain"}, body) == 415
        assert call("POST", auth, body) == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_no_float_in_the_signer_source() -> None:
    source = Path(__file__).parents[2] / "services" / "signer" / "src" / "stablegate_signer"
    offenders = [p.name for p in source.glob("*.py") if re.search(r"\bfloat\(", p.read_text())]
    assert offenders == []
