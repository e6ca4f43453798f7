"""Provider pools per chain family: what an EVM or Tron client offers beyond
`ChainClient`, delegated through `ProviderPool`, and the builders from configured
endpoints.

A capability is offered only where every member offers it (the engine tests for
`RecipientFilter`, `FinalizedHeadSource`, `BatchBalances` with isinstance), so each
family has a class of its own. To delegate a new client method, add it here with
`self._routed(block, lambda c: c.method(...), "method")` when the call is about a given
block (a provider whose head is below it is never asked), or `self._any(...)` otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Container, Sequence

from pydantic import SecretStr

from stablegate_common.chains.base import (
    ChainError,
    ChainUnavailable,
    TokenTransfer,
    TransferLogs,
    TxReceipt,
)
from stablegate_common.chains.endpoints import RpcEndpoint
from stablegate_common.chains.evm import EvmClient, FeeHistory
from stablegate_common.chains.pool import PoolPolicy, Provider, ProviderPool
from stablegate_common.chains.tron import TronClient
from stablegate_common.chains.tron_decode import TronBlock


class EvmProviderPool(ProviderPool[EvmClient]):
    """`ChainClient`, `RecipientFilter`, `BatchBalances` and `BlockLogsSource` over
    several EVM providers."""

    async def chain_id(self) -> int:
        """The chain id every answering provider agrees on; a provider of another chain
        is a configuration error, named here."""
        answers = await asyncio.gather(
            *(p.client.chain_id() for p in self.providers), return_exceptions=True
        )
        ids = {
            p.name: a for p, a in zip(self.providers, answers, strict=True) if isinstance(a, int)
        }
        if not ids:
            raise ChainUnavailable(f"{self.network}: no provider answered eth_chainId")
        if len(set(ids.values())) > 1:
            raise ChainError(f"{self.network}: providers serve different chains: {ids}")
        return next(iter(ids.values()))

    async def gas_price(self) -> int:
        return await self._any(lambda c: c.gas_price(), "gas_price")

    async def fee_history(self, block_count: int, percentiles: Sequence[float]) -> FeeHistory:
        return await self._any(lambda c: c.fee_history(block_count, percentiles), "fee_history")

    async def transfers_to(
        self,
        from_block: int,
        to_block: int,
        contracts: Sequence[str],
        recipients: Container[str],
    ) -> list[TokenTransfer]:
        return await self._routed(
            to_block,
            lambda c: c.transfers_to(from_block, to_block, contracts, recipients),
            "transfers_to",
        )

    async def transfer_logs(
        self,
        from_block: int,
        to_block: int,
        contracts: Sequence[str],
        recipients: Container[str] | None,
    ) -> TransferLogs:
        return await self._routed(
            to_block,
            lambda c: c.transfer_logs(from_block, to_block, contracts, recipients),
            "transfer_logs",
        )

    async def block_transfers(
        self,
        block_hashes: Sequence[str],
        contracts: Sequence[str],
        recipients: Container[str] | None,
    ) -> list[TokenTransfer]:
        # By hash: a provider that lacks a block answers an error, and the next one is
        # asked; when none has it the engine reads the window again later.
        return await self._any(
            lambda c: c.block_transfers(block_hashes, contracts, recipients), "block_transfers"
        )

    async def token_balances(
        self, queries: Sequence[tuple[str, str]], block: int | None = None
    ) -> list[int]:
        return await self._routed(
            block, lambda c: c.token_balances(queries, block), "token_balances"
        )

    async def tx_receipt(self, tx_hash: str) -> TxReceipt | None:
        return await self._any(lambda c: c.tx_receipt(tx_hash), "tx_receipt")

    async def tx_known(self, tx_hash: str) -> bool:
        return await self._any(lambda c: c.tx_known(tx_hash), "tx_known")

    async def send_raw_transaction(self, signed_hex: str) -> str:
        # Every provider is tried until one takes it: a refusal may be one node's (a full
        # pool); when all refuse, the last refusal (BroadcastRejected) is the answer.
        return await self._any(lambda c: c.send_raw_transaction(signed_hex), "send_raw")


class TronProviderPool(ProviderPool[TronClient]):
    """`ChainClient` and `FinalizedHeadSource` over several java-tron HTTP APIs."""

    async def finalized_head(self) -> int:
        """The highest solidified block that at least `quorum` providers report."""
        answers = await asyncio.gather(
            *(p.client.finalized_head() for p in self.providers), return_exceptions=True
        )
        solid = sorted((a for a in answers if isinstance(a, int)), reverse=True)
        k = self.policy.quorum
        if len(solid) < k:
            raise ChainUnavailable(
                f"{self.network}: {len(solid)} providers answered the solidified head, "
                f"quorum is {k}"
            )
        return solid[k - 1]

    async def finalized_hashes(self, numbers: Sequence[int]) -> dict[int, str]:
        """The solidified chain's hashes at these heights, from a provider whose head
        covers them (heights above its solidified block are left out)."""
        wanted = list(numbers)
        if not wanted:
            return {}
        return await self._routed(
            max(wanted), lambda c: c.finalized_hashes(wanted), "finalized_hashes"
        )

    async def blocks(self, numbers: Sequence[int]) -> list[TronBlock]:
        """Blocks with their transaction ids (the tracker checks a receipt's block lists it)."""
        wanted = list(numbers)
        if not wanted:
            return []
        return await self._routed(max(wanted), lambda c: c.blocks(wanted), "blocks")

    async def energy_price(self) -> int:
        return await self._any(lambda c: c.energy_price(), "energy_price")

    async def bandwidth_price(self) -> int:
        return await self._any(lambda c: c.bandwidth_price(), "bandwidth_price")

    async def tx_receipt(self, tx_hash: str) -> TxReceipt | None:
        return await self._any(lambda c: c.tx_receipt(tx_hash), "tx_receipt")

    async def tx_known(self, tx_hash: str) -> bool:
        return await self._any(lambda c: c.tx_known(tx_hash), "tx_known")

    async def send_raw_transaction(self, signed_hex: str) -> str:
        # Every provider is tried until one takes it: a refusal may be one node's (a full
        # pool); when all refuse, the last refusal (BroadcastRejected) is the answer.
        return await self._any(lambda c: c.send_raw_transaction(signed_hex), "send_raw")


def evm_pool(
    network: str,
    endpoints: Sequence[RpcEndpoint],
    policy: PoolPolicy,
    *,
    timeout_seconds: float = 10.0,
    poa: bool = False,
) -> EvmProviderPool:
    providers = [
        Provider(e.name, EvmClient(e.url, timeout_seconds=timeout_seconds, poa=poa), e.weight)
        for e in endpoints
    ]
    return EvmProviderPool(network, providers, policy)


def tron_pool(
    network: str,
    endpoints: Sequence[RpcEndpoint],
    solidity: Sequence[RpcEndpoint],
    policy: PoolPolicy,
    *,
    api_key: SecretStr | None = None,
    timeout_seconds: float = 10.0,
    blocks_per_call: int = 50,
) -> TronProviderPool:
    """One client per full node; `solidity` is empty (each full node serves
    /walletsolidity/* itself), one URL shared by all, or one per full node, in order."""
    if solidity and len(solidity) not in (1, len(endpoints)):
        raise ValueError(
            f"{len(solidity)} solidity URLs for {len(endpoints)} full nodes: give none, "
            "one, or one per full node"
        )
    providers = []
    for index, endpoint in enumerate(endpoints):
        paired = solidity[index if len(solidity) > 1 else 0].url if solidity else ""
        client = TronClient(
            endpoint.url,
            solidity_url=paired,
            api_key=api_key,
            timeout_seconds=timeout_seconds,
            blocks_per_call=blocks_per_call,
        )
        providers.append(Provider(endpoint.name, client, endpoint.weight))
    return TronProviderPool(network, providers, policy)


__all__ = ["EvmProviderPool", "TronProviderPool", "evm_pool", "tron_pool"]
