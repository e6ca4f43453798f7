"""`stablegate-signer serve`: the same signing round over local HTTP, for automated businesses.

POST /v1/sign with a signing request as the body → 200 and the signed response, or an
error envelope `{"error": {"code", "message", "transaction", "field"}}` (400 for a bad
document, 422 for a refusal). GET /v1/health → `{"status": "ok"}`. No confirmation prompt:
the policy is the only gate, so keep the socket private (it is created mode 0600).
"""

from __future__ import annotations

import ipaddress
import json
import os
import socketserver
import stat
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from stablegate_signer.documents import dump, load_request
from stablegate_signer.errors import InvalidDocument, SignerError
from stablegate_signer.signing import Signer

MAX_BODY = 16 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    server_version = "stablegate-signer"
    signer: Signer  # set on the subclass made per server

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
        if self.path == "/v1/health":
            self._reply(200, json.dumps({"status": "ok"}))
        else:
            self._reply(404, _envelope("not_found", "GET /v1/health or POST /v1/sign"))

    def do_POST(self) -> None:
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


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class LoopbackHTTPServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True


def make_server(
    signer: Signer, socket_path: Path | None, listen: str | None
) -> socketserver.BaseServer:
    handler = type("SignerHandler", (_Handler,), {"signer": signer})
    if socket_path is not None:
        if socket_path.exists():
            if not stat.S_ISSOCK(socket_path.stat().st_mode):
                raise SystemExit(f"{socket_path} exists and is not a socket")
            socket_path.unlink()
        old = os.umask(0o177)
        try:
            return UnixHTTPServer(str(socket_path), handler)
        finally:
            os.umask(old)
    assert listen is not None
    host, _, port = listen.rpartition(":")
    if not ipaddress.ip_address(host.strip("[]")).is_loopback:
        raise SystemExit(
            "--listen takes a loopback address (127.0.0.1:PORT); use --socket otherwise"
        )
    return LoopbackHTTPServer((host.strip("[]"), int(port)), handler)
