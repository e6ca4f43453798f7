"""The devnet's HTTP server: the java-tron API routes, the block timer, injected node
problems, and the test-only controls under `/_devnet/`.

Controls (POST, JSON body; every answer includes the chain `status`):

    mine      {"count": 1}                          seal blocks now
    fork      {"depth": n, "txs": "keep"|"drop"|"last", "blocks": n}
    fund      {"address": "T…", "trx": sun, "tokens": {"USDT": base units}, "mine": true}
    transfer  {"from": index|"T…"|"faucet" | "private_key": hex, "to": "T…", "amount": units,
               "token": "USDT", "fee_limit": sun, "fail": "REVERT"|"OUT_OF_ENERGY",
               "keep_logs": false, "mine": true}
    stake     {"from": index|"T…"|"faucet" | "private_key": hex, "amount": sun,
               "resource": "ENERGY"|"BANDWIDTH", "mine": true}   FreezeBalanceV2
    delegate  {"from"… | "private_key", "to": "T…", "amount": sun, "resource": "ENERGY",
               "undo": false, "mine": true}   DelegateResource (UnDelegateResource if undo)
    set_prices {"energy": sun, "bandwidth": sun}   burn prices from now on
    fail_next {"path": "wallet/getnowblock"|"*", "mode": "error"|"busy"|"503"|"hang"|
               "close"|"lite", "times": 1, "seconds": 30}
    pause / resume                                  stop or restart the block timer
    down      {"mode": "503"|"refuse", "seconds": n}  refuse needs seconds (nothing could
               reach the control to bring it back); `up` ends a 503 outage early
    up
    status    (GET too)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from devnet.tron import api_resources  # noqa: F401  (registers the Stake 2.0 endpoints)
from devnet.tron.api import ApiRequest, handle
from devnet.tron.node import ControlError, DevnetNode
from devnet.tron.render import java_error

FAULT_MODES = ("error", "busy", "503", "hang", "close", "lite")
LITE_NODE = "this API is closed because this node is a lite fullnode"
log = logging.getLogger(__name__)


@dataclass
class ApiFault:
    path: str  # "wallet/getnowblock" or "*"
    mode: str
    times: int
    seconds: float


class DevnetServer:
    """Serves one DevnetNode on 127.0.0.1:`port` in the running event loop."""

    def __init__(self, node: DevnetNode, port: int, host: str = "127.0.0.1") -> None:
        self.node = node
        self.host, self.port = host, port
        self.faults: list[ApiFault] = []
        self.outage: str | None = None  # "503" or "refuse"
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._outages])
        app.router.add_route("*", "/wallet/{name}", self._wallet)
        app.router.add_route("*", "/walletsolidity/{name}", self._solidity)
        app.router.add_route("*", "/_devnet/{name}", self._control)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await self._listen()
        if self.node.config.block_time > 0:
            self._spawn(self._produce_blocks())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._runner is not None:
            await self._runner.cleanup()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _produce_blocks(self) -> None:
        while True:
            await asyncio.sleep(self.node.config.block_time)
            if self.node.paused:
                continue
            try:
                self.node.chain.produce_block()
            except Exception:
                # A devnet bug must not stop the chain silently: say so and keep going.
                log.exception("tron devnet: producing a block failed")

    # --- outages ----------------------------------------------------------------------------

    async def down(self, mode: str, seconds: float | None) -> None:
        if mode not in ("503", "refuse"):
            raise ControlError("down: mode must be 503 or refuse")
        self.outage = mode
        if mode == "refuse" and self._site is not None:
            await self._site.stop()
            self._site = None
        if seconds:
            self._spawn(self._up_later(seconds))

    async def up(self) -> None:
        self.outage = None
        if self._site is None:
            await self._listen()

    async def _up_later(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.up()

    def fail_next(self, path: str, mode: str, times: int = 1, seconds: float = 30.0) -> None:
        if mode not in FAULT_MODES:
            raise ControlError(f"fail_next: mode must be one of {', '.join(FAULT_MODES)}")
        self.faults.append(ApiFault(path.strip("/"), mode, times, seconds))

    def _take_fault(self, path: str) -> ApiFault | None:
        for fault in self.faults:
            if fault.path in ("*", path):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    @web.middleware
    async def _outages(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path.strip("/")
        if path.startswith("_devnet/"):
            return await handler(request)
        if self.outage == "refuse":
            return _drop_connection(request)  # a keep-alive connection from before
        if self.outage == "503":
            return web.Response(status=503, text="Service Unavailable")
        fault = self._take_fault(path)
        if fault is None:
            return await handler(request)
        if fault.mode == "hang":
            await asyncio.sleep(fault.seconds)
            if request.transport is None or request.transport.is_closing():
                return web.Response()  # the client gave up waiting: nobody to answer
            return await handler(request)
        if fault.mode == "close":
            return _drop_connection(request)
        if fault.mode == "503":
            return web.Response(status=503, text="Service Unavailable")
        if fault.mode == "lite":
            return web.Response(text=LITE_NODE)
        if fault.mode == "busy":
            body = java_error("java.lang.IllegalAccessException", "lack of computing resources")
            return web.json_response(body)
        return web.json_response(java_error("java.lang.RuntimeException", "devnet fault"))

    # --- java-tron API ----------------------------------------------------------------------

    async def _wallet(self, request: web.Request) -> web.StreamResponse:
        return await self._api(request, solid=False)

    async def _solidity(self, request: web.Request) -> web.StreamResponse:
        return await self._api(request, solid=True)

    async def _api(self, request: web.Request, *, solid: bool) -> web.StreamResponse:
        query_visible = _truthy(request.query.get("visible"))
        body: Any = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            try:
                body = json.loads(await request.text() or "{}")
            except ValueError:
                return web.json_response(java_error("java.lang.NullPointerException", "null"))
        if not isinstance(body, dict):
            return web.json_response(java_error("java.lang.NullPointerException", "null"))
        visible = _truthy(body.get("visible")) if "visible" in body else query_visible
        api = ApiRequest(self.node.chain, body, visible, query_visible, solid)
        answer = handle(api, request.match_info["name"])
        if answer is None:
            return web.Response(status=404, text="Not Found")
        return web.json_response(answer)

    # --- controls ---------------------------------------------------------------------------

    async def _control(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = {}
        if request.can_read_body:
            try:
                body = json.loads(await request.text() or "{}")
            except ValueError:
                return web.json_response({"error": "body is not JSON"}, status=400)
        try:
            answer = await self.control(request.match_info["name"], body)
        except ControlError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"error": f"bad control request: {exc!r}"}, status=400)
        return web.json_response({**answer, "status": self.node.status()})

    async def control(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Carry out one control; the HTTP routes and the in-process handle both use it."""
        node = self.node
        if name == "mine":
            return {"blocks": [b.number for b in node.mine(int(body.get("count", 1)))]}
        if name == "fork":
            count = None if body.get("blocks") is None else int(body["blocks"])
            new = node.fork(int(body["depth"]), body.get("txs", "keep"), count)
            return {"blocks": [{"number": b.number, "blockID": b.block_id} for b in new]}
        if name == "fund":
            sent = node.fund(
                body["address"],
                trx_sun=int(body.get("trx", 0)),
                tokens={k: int(v) for k, v in body.get("tokens", {}).items()},
                mine=bool(body.get("mine", True)),
            )
            return {"sent": [{"txid": s.txid, "block": s.block} for s in sent]}
        if name == "transfer":
            return _transfer(node, body)
        if name in ("stake", "delegate"):
            return _stake(node, name, body)
        if name == "set_prices":
            energy, bandwidth = body.get("energy"), body.get("bandwidth")
            node.set_prices(
                energy=None if energy is None else int(energy),
                bandwidth=None if bandwidth is None else int(bandwidth),
            )
            return {}
        if name == "fail_next":
            self.fail_next(
                body.get("path", "*"),
                body.get("mode", "error"),
                int(body.get("times", 1)),
                float(body.get("seconds", 30.0)),
            )
            return {}
        if name in ("pause", "resume"):
            node.paused = name == "pause"
            return {}
        if name == "down":
            mode, seconds = body.get("mode", "503"), body.get("seconds")
            if mode == "refuse" and not seconds:
                raise ControlError("down: refuse needs seconds, or nothing could bring it up")
            await self.down(mode, None if seconds is None else float(seconds))
            return {}
        if name == "up":
            await self.up()
            return {}
        if name == "status":
            return {}
        raise ControlError(f"no control named {name!r}")


def _transfer(node: DevnetNode, body: dict[str, Any]) -> dict[str, Any]:
    key = body.get("private_key") or node.key_for(body.get("from", 0))
    fee_limit = body.get("fee_limit")
    sent = node.send_token(
        key,
        body["to"],
        int(body["amount"]),
        token=body.get("token", "USDT"),
        fee_limit=None if fee_limit is None else int(fee_limit),
        fail=body.get("fail"),
        keep_logs=bool(body.get("keep_logs", False)),
        mine=bool(body.get("mine", True)),
    )
    return {"txid": sent.txid, "block": sent.block}


def _stake(node: DevnetNode, name: str, body: dict[str, Any]) -> dict[str, Any]:
    key = body.get("private_key") or node.key_for(body.get("from", 0))
    resource, mine = body.get("resource", "ENERGY"), bool(body.get("mine", True))
    if name == "stake":
        sent = node.stake(key, int(body["amount"]), resource, mine=mine)
    else:
        undo = bool(body.get("undo", False))
        sent = node.delegate(key, body["to"], int(body["amount"]), resource, undo=undo, mine=mine)
    return {"txid": sent.txid, "block": sent.block}


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the socket without an answer, as a crashing node would; aiohttp then skips
    writing the response it is handed."""
    if request.transport is not None:
        request.transport.close()
    return web.Response()
