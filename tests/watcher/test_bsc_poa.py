"""Proof-of-authority blocks, as BSC serves them, against our EVM client and the engine.

anvil ignores genesis extraData (chains.md §2.4), so a JSON-RPC stub in front of the BSC
devnet rewrites every block it returns the way a BSC node writes it: 97 bytes of
extraData (32 vanity + 65 validator seal) and difficulty 2 (in turn). The first test
proves the stub reproduces the real problem: web3's block formatter rejects those blocks
unless ExtraDataToPOAMiddleware is injected. The others show that our raw JSON-RPC client
and the engine read such a chain unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import ExtraDataLengthError
from web3.middleware import ExtraDataToPOAMiddleware

from stablegate_common.chains.evm import EvmClient
from stablegate_common.events import parse_payload
from stablegate_common.events.contracts import TransferConfirmed, TransferDetected
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.watcher import CONFIRMATIONS, announce, queued_events, scan_to_head
from tests.watcher.bsc_support import bsc_engine, network_of, watcher_schema

pytestmark = pytest.mark.asyncio(loop_scope="session")

VANITY = bytes(range(32))
SEAL = b"\x5a" * 65  # a validator's secp256k1 signature over the header
BSC_EXTRA_DATA = "0x" + (VANITY + SEAL).hex()
BLOCK_METHODS = ("eth_getBlockByNumber", "eth_getBlockByHash")


def _as_bsc(method: str, result: Any) -> Any:
    if method in BLOCK_METHODS and isinstance(result, dict):
        return {**result, "extraData": BSC_EXTRA_DATA, "difficulty": "0x2"}
    return result


class PoaStub:
    """Forwards JSON-RPC (single and batch) to the node and rewrites the blocks."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.blocks_served = 0
        self._http = httpx.AsyncClient(timeout=10)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/"

    async def close(self) -> None:
        await self._http.aclose()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        answer = (await self._http.post(self.upstream, json=body)).json()
        calls = body if isinstance(body, list) else [body]
        items = answer if isinstance(answer, list) else [answer]
        methods = {call["id"]: call["method"] for call in calls}
        for item in items:
            if "result" in item:
                method = methods.get(item.get("id"), "")
                item["result"] = _as_bsc(method, item["result"])
                self.blocks_served += method in BLOCK_METHODS
        return web.json_response(answer)


@pytest_asyncio.fixture(loop_scope="session")
async def poa_stub(anvil_bsc: AnvilChain) -> AsyncIterator[PoaStub]:
    stub = PoaStub(anvil_bsc.rpc_url)
    await stub.start()
    try:
        yield stub
    finally:
        await stub.close()


async def test_the_stub_serves_blocks_that_web3_rejects_without_the_poa_middleware(
    anvil_bsc: AnvilChain, poa_stub: PoaStub
) -> None:
    head = await anvil_bsc.block_number()
    plain = AsyncWeb3(AsyncHTTPProvider(poa_stub.url))
    with pytest.raises(ExtraDataLengthError, match="97 bytes"):
        await plain.eth.get_block(head)

    poa = AsyncWeb3(AsyncHTTPProvider(poa_stub.url))
    poa.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    block = await poa.eth.get_block(head)
    assert block["proofOfAuthorityData"] == VANITY + SEAL
    assert block["hash"].to_0x_hex() == await anvil_bsc.block_hash(head)


async def test_the_evm_client_reads_poa_headers_unchanged(
    anvil_bsc: AnvilChain, poa_stub: PoaStub
) -> None:
    await anvil_bsc.mine(3)
    head = await anvil_bsc.block_number()
    numbers = list(range(head - 3, head + 1))
    async with (
        EvmClient(poa_stub.url, timeout_seconds=5, poa=True) as through_stub,
        EvmClient(anvil_bsc.rpc_url, timeout_seconds=5) as direct,
    ):
        assert await through_stub.headers(numbers) == await direct.headers(numbers)
        assert await through_stub.headers([head]) == await direct.headers([head])
    assert poa_stub.blocks_served >= len(numbers) + 1


async def test_the_engine_detects_and_confirms_a_payment_on_a_poa_chain(
    anvil_bsc: AnvilChain, poa_stub: PoaStub
) -> None:
    bsc = network_of(anvil_bsc, "bsc")
    async with (
        watcher_schema() as db,
        EvmClient(poa_stub.url, timeout_seconds=5, poa=True) as client,
    ):
        engine = bsc_engine(db, client, bsc, start_block=await anvil_bsc.block_number() + 1)
        await engine.verify_chain()
        await engine.resume()
        deposit = fresh_address()
        await announce(db, bsc, [deposit])
        tx_hash = await anvil_bsc.transfer(anvil_bsc.usdc, deposit, 12 * 10**18)
        await anvil_bsc.mine(CONFIRMATIONS - 1)
        await scan_to_head(engine)

        [detected] = await queued_events(db, "transfer.detected")
        [confirmed] = await queued_events(db, "transfer.confirmed")
        for event, kind in ((detected, TransferDetected), (confirmed, TransferConfirmed)):
            payload = parse_payload(event, kind)
            assert (payload.network, payload.tx_hash) == ("bsc", tx_hash)
            assert payload.token_contract == anvil_bsc.usdc
            assert payload.amount_base_units == 12 * 10**18
    assert poa_stub.blocks_served > 0
