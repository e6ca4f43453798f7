"""`stablegate-signer serve`: the same signing round over local HTTP, for automated businesses.

POST /v1/sign with a signing request as the body → 200 and the signed response, or an
error envelope `{"error": {"code", "message", "transaction", "field"}}` (400 for a bad
document, 422 for a refusal). GET /v1/health → `{"status": "ok"}`. No confirmation prompt:
the policy is the only gate, so every caller is authenticated:

- Unix socket: mode 0600 (or 0660 with `--socket-group`); the peer's uid/gid (SO_PEERCRED)
  must be the signer's own uid or one of `--allow-uid`.
- TCP (`--listen`, loopback only): a bearer token (`--token-file` or `--token-env`, never
  argv) compared in constant time, a Host of localhost/127.0.0.1/[::1] (DNS rebinding),
  and `Content-Type: application/json` on POST (no simple cross-origin form posts).

Each connection has a read timeout and at most MAX_CONNECTIONS are handled at once.
"""

from __future__ import annotations

import grp
import hmac
import ipaddress
import json
import os
import re
import socket
import socketserver
import stat
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from stablegate_signer.documents import dump, load_request
from stablegate_signer.errors import InvalidDocument, SignerError
from stablegate_signer.signing import Signer

MAX_BODY = 2 * 1024 * 1024
MAX_CONNECTIONS = 4  # signing is serialized under the state lock anyway
TIMEOUT_SECONDS = 30
_LOCAL_HOST = re.compile(r"(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?", re.IGNORECASE)


class _Handler(BaseHTTPRequestHandler):
    server_version = "stablegate-signer"
    signer: Signer  # set on the subclass made per server
    token: bytes | None = None  # TCP: the bearer token every request must carry
    timeout = TIMEOUT_SECONDS

    def _authorized(self) -> bool:
        """TCP only: Host, token (and Content-Type on POST); replies and returns False if not."""
        if self.token is None:
            return True
        if not _LOCAL_HOST.fullmatch(self.headers.get("Host", "")):
            self._reply(403, _envelope("forbidden_host", "Host must be localhost or 127.0.0.1"))
            return False
        given = self.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, b"Bearer " + self.token):
            self._reply(401, _envelope("unauthorized", "a valid bearer token is required"))
            return False
        return True

    def address_string(self) -> str:  # a Unix socket's peer has no address
        return str(self.client_address or "unix")

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"stablegate-signer serve: {format % args}\n")

    def _reply(self, status: int, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if self.path == "/v1/health":
            self._reply(200, json.dumps({"status": "ok"}))
        else:
            self._reply(404, _envelope("not_found", "GET /v1/health or POST /v1/sign"))

    def do_POST(self) -> None:
        if not self._authorized():
            return
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            self._reply(415, _envelope("unsupported_media_type", "Content-Type: application/json"))
            return
        if self.path != "/v1/sign":
            self._reply(404, _envelope("not_found", "POST /v1/sign"))
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._reply(411, _envelope("length_required", "Content-Length is required"))
            return
        if not 0 < length <= MAX_BODY:
            self._reply(413, _envelope("too_large", f"the body is limited to {MAX_BODY} bytes"))
            return
        body = self.rfile.read(length)
        try:
            response = self.signer.sign(load_request(body), confirm=None)
        except SignerError as exc:
            status = 400 if isinstance(exc, InvalidDocument) else 422
            self.log_message("refused: %s", exc.describe())
            self._reply(status, json.dumps({"error": exc.as_dict()}))
            return
        except Exception as exc:  # an internal fault: answer, sign nothing, keep serving
            self.log_message("internal error: %s", type(exc).__name__)
            self._reply(500, _envelope("internal_error", "the signer failed; nothing was signed"))
            return
        self.log_message(
            "signed request %s (%d transactions)", response.request_id, len(response.transactions)
        )
        self._reply(200, dump(response))


def _envelope(code: str, message: str) -> str:
    return json.dumps(
        {"error": {"code": code, "message": message, "transaction": None, "field": None}}
    )


class _Bounded(socketserver.ThreadingMixIn):
    """At most MAX_CONNECTIONS handler threads; a connection beyond that is closed."""

    daemon_threads = True
    _slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # type: ignore[attr-defined]
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class UnixHTTPServer(_Bounded, socketserver.UnixStreamServer):
    allowed_uids: frozenset[int] = frozenset()

    def verify_request(self, request: Any, client_address: Any) -> bool:
        creds = request.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid == os.getuid() or uid in self.allowed_uids:
            return True
        sys.stderr.write(f"stablegate-signer serve: refused a peer with uid {uid}\n")
        return False


class LoopbackHTTPServer(_Bounded, HTTPServer):
    pass


def read_token(token_file: Path | None, token_env: str | None) -> bytes:
    """The bearer token from a file (owner-only) or an environment variable (then popped)."""
    if token_file is not None:
        if token_file.stat().st_mode & 0o077:
            raise SystemExit(f"the token file {token_file} is readable by others (chmod 600 it)")
        token = token_file.read_text(encoding="utf-8").strip()
    elif token_env is not None:
        token = os.environ.pop(token_env, "").strip()
    else:
        raise SystemExit("--listen needs --token-file or --token-env (a bearer token)")
    if len(token) < 32:
        raise SystemExit("the bearer token must be at least 32 characters")
    return token.encode("utf-8")


def make_server(
    signer: Signer,
    socket_path: Path | None,
    listen: str | None,
    *,
    token: bytes | None = None,
    socket_group: str | None = None,
    allow_uids: frozenset[int] = frozenset(),
) -> socketserver.BaseServer:
    attrs: dict[str, Any] = {"signer": signer, "token": None if socket_path else token}
    handler = type("SignerHandler", (_Handler,), attrs)
    if socket_path is not None:
        if socket_path.exists():
            if not stat.S_ISSOCK(socket_path.stat().st_mode):
                raise SystemExit(f"{socket_path} exists and is not a socket")
            socket_path.unlink()
        old = os.umask(0o177)
        try:
            server = UnixHTTPServer(str(socket_path), handler)
        finally:
            os.umask(old)
        server.allowed_uids = allow_uids
        if socket_group is not None:
            os.chown(socket_path, -1, grp.getgrnam(socket_group).gr_gid)
            os.chmod(socket_path, 0o660)
        return server
    assert listen is not None
    host, port = check_listen(listen)
    if token is None:
        raise SystemExit("--listen needs --token-file or --token-env (a bearer token)")
    return LoopbackHTTPServer((host, port), handler)


def check_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not ipaddress.ip_address(host.strip("[]")).is_loopback:
        raise SystemExit(
            "--listen takes a loopback address (127.0.0.1:PORT); use --socket otherwise"
        )
    return host.strip("[]"), int(port)
