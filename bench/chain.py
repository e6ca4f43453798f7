"""A local anvil chain for the benchmarks, and fast ways to fill it with token transfers.

The chain is the devnet's (devnet/devnet.py: anvil, USDT and USDC compiled from
devnet/contracts, minted to the dev accounts), started on a free port with a block gas
limit high enough for blocks of thousands of transfers. Bulk sending follows chains.md
§2.6: automine off, legacy transactions with explicit nonces and a fixed gas price sent in
JSON-RPC batches, then `evm_mine`. `batchTransfer` (TestStablecoin) pays hundreds of
recipients in one transaction, one Transfer log each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devnet.devnet import (
    NETWORKS,
    AnvilProcess,
    DeployedTokens,
    assets_overlay,
    deploy_tokens,
    encode_call,
    free_port,
    start_anvil,
)

SPEC = NETWORKS["ethereum"]
GAS_PRICE = 100 * 10**9  # far above any base fee the benchmarks drive the chain to
TRANSFER_GAS = 80_000
BATCH_GAS_PER_RECIPIENT = 40_000  # a new holder's balance slot (22k) + log + loop, rounded up
RPC_BATCH = 200  # JSON-RPC calls per HTTP request (anvil caps a request body at 2 MB)


class ChainError(Exception):
    """anvil refused a call or a transaction failed."""


def random_address() -> str:
    return "0x" + secrets.token_hex(20)


@dataclass
class BenchChain:
    process: AnvilProcess
    tokens: DeployedTokens
    overlay: dict[str, Any]
    assets_file: Path
    http: httpx.AsyncClient = field(repr=False)
    _nonces: dict[str, int] = field(default_factory=dict)

    @property
    def rpc_url(self) -> str:
        return self.process.rpc_url

    @property
    def usdt(self) -> str:
        return self.tokens.usdt

    @property
    def decimals(self) -> int:
        return self.tokens.decimals

    async def rpc(self, method: str, *params: Any) -> Any:
        payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        body = (await self.http.post(self.rpc_url, json=payload)).json()
        if "error" in body:
            raise ChainError(f"{method}: {body['error']}")
        return body["result"]

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Results in call order; anvil runs a batch's calls concurrently."""
        results: list[Any] = []
        for start in range(0, len(calls), RPC_BATCH):
            chunk = calls[start : start + RPC_BATCH]
            payload = [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
                for i, (m, p) in enumerate(chunk)
            ]
            body = (await self.http.post(self.rpc_url, json=payload)).json()
            by_id = {item["id"]: item for item in body}
            for i, (method, _) in enumerate(chunk):
                if "error" in by_id[i]:
                    raise ChainError(f"{method}: {by_id[i]['error']}")
                results.append(by_id[i]["result"])
        return results

    async def head(self) -> int:
        return int(await self.rpc("eth_blockNumber"), 16)

    async def set_automine(self, enabled: bool) -> None:
        await self.rpc("evm_setAutomine", enabled)

    async def mine(self, blocks: int = 1) -> None:
        await self.rpc("anvil_mine", hex(blocks))

    async def fund(self, sender: str, whole_tokens: int) -> None:
        """Mint USDT to `sender` and make anvil sign for it (any address will do)."""
        await self.rpc("anvil_setBalance", sender, hex(10**24))
        await self.rpc("anvil_impersonateAccount", sender)
        amount = whole_tokens * 10**self.decimals
        data = encode_call("mint(address,uint256)", sender, amount)
        tx = {"from": self.tokens.deployer, "to": self.usdt, "data": data}
        tx_hash = await self.rpc("eth_sendTransaction", tx)
        await self.mine()
        await self.wait_receipts([tx_hash])

    async def _nonce(self, sender: str) -> int:
        if sender not in self._nonces:
            count = await self.rpc("eth_getTransactionCount", sender, "pending")
            self._nonces[sender] = int(count, 16)
        nonce = self._nonces[sender]
        self._nonces[sender] = nonce + 1
        return nonce

    async def _tx(self, sender: str, to: str, data: str, gas: int) -> dict[str, Any]:
        return {
            "from": sender,
            "to": to,
            "data": data,
            "gas": hex(gas),
            "gasPrice": hex(GAS_PRICE),
            "nonce": hex(await self._nonce(sender)),
        }

    async def send_transactions(self, txs: Sequence[dict[str, Any]]) -> list[str]:
        """Send prepared transactions (explicit nonces); automine must be off."""
        hashes = await self.batch([("eth_sendTransaction", [tx]) for tx in txs])
        return [str(h) for h in hashes]

    async def transfer_txs(
        self, sender: str, payments: Sequence[tuple[str, int]]
    ) -> list[dict[str, Any]]:
        """One USDT `transfer(to, amount)` transaction per payment, nonces in order."""
        return [
            await self._tx(
                sender,
                self.usdt,
                encode_call("transfer(address,uint256)", to, amount),
                TRANSFER_GAS,
            )
            for to, amount in payments
        ]

    async def batch_transfer_tx(
        self, sender: str, payments: Sequence[tuple[str, int]]
    ) -> dict[str, Any]:
        """One `batchTransfer` transaction paying every (recipient, amount)."""
        data = encode_call(
            "batchTransfer(address[],uint256[])",
            [to for to, _ in payments],
            [amount for _, amount in payments],
        )
        return await self._tx(
            sender, self.usdt, data, 100_000 + BATCH_GAS_PER_RECIPIENT * len(payments)
        )

    async def wait_receipts(self, tx_hashes: Sequence[str], timeout: float = 60.0) -> list[Any]:
        """Receipts of mined transactions; raises when one reverted or is not mined."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            receipts = await self.batch([("eth_getTransactionReceipt", [h]) for h in tx_hashes])
            if all(r is not None for r in receipts):
                break
            if loop.time() > deadline:
                raise ChainError(f"{sum(r is None for r in receipts)} transactions not mined")
            await asyncio.sleep(0.05)
        failed = [r["transactionHash"] for r in receipts if r["status"] != "0x1"]
        if failed:
            raise ChainError(f"{len(failed)} transactions reverted, e.g. {failed[0]}")
        return receipts

    async def balances(self, addresses: Sequence[str], token: str | None = None) -> list[int]:
        calls = [
            (
                "eth_call",
                [
                    {"to": token or self.usdt, "data": encode_call("balanceOf(address)", a)},
                    "latest",
                ],
            )
            for a in addresses
        ]
        return [int(r, 16) for r in await self.batch(calls)]


@contextlib.asynccontextmanager
async def bench_chain(workdir: Path, *, gas_limit: int | None = None) -> AsyncIterator[BenchChain]:
    """anvil on a free port with the devnet's tokens; stopped on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    extra = ["--gas-limit", str(gas_limit)] if gas_limit else []
    process = await asyncio.to_thread(
        start_anvil, free_port(), SPEC.chain_id, log_path=workdir / "anvil.log", extra_args=extra
    )
    try:
        tokens = await asyncio.to_thread(deploy_tokens, process.rpc_url, decimals=SPEC.decimals)
        overlay = assets_overlay(SPEC, tokens)
        assets_file = workdir / "assets.json"
        assets_file.write_text(json.dumps(overlay))
        async with httpx.AsyncClient(timeout=120) as http:
            yield BenchChain(process, tokens, overlay, assets_file, http)
    finally:
        process.stop()
