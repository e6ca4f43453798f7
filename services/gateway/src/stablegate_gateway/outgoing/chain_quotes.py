"""What the sweep planner needs from the nodes, read at plan time.

EVM (raw JSON-RPC, batched): token balances at the confirmed depth (what was booked; a
newer payment waits for the next round), native balances and pending nonces of deposit
addresses and the fee wallet, `eth_estimateGas` of `transfer(treasury, balance)` from
each deposit address, and the fee price: the next base fee and the median tip of recent
blocks (eth_feeHistory) on EIP-1559 chains, `eth_gasPrice` on BSC.

Tron (java-tron HTTP, `visible` base58): token balances from the solidified state,
`getaccount` (an address that only received TRC-20 has no account: `{}`),
`getaccountresource` (bandwidth left; the network's TotalEnergyLimit/Weight),
`getcandelegatedmaxsize` of the fee wallet, `getchainparameters` (prices and the account
creation fees), `estimateenergy` (or `triggerconstantcontract`) of the TRC-20 transfer,
and a recent solidified block for ref_block_bytes / ref_block_hash.

A sweep whose estimate the node refuses (a paused or blacklisted token reverts) is left
out and reported; a node that cannot be reached raises ChainUnavailable for the round.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from stablegate_common.chains.base import ChainError, ChainUnavailable
from stablegate_common.chains.evm import EvmClient
from stablegate_common.chains.jsonrpc import Call, JsonRpcTransport
from stablegate_common.chains.tron import TronClient
from stablegate_common.chains.tron_decode import integer, to_hex20
from stablegate_common.chains.tron_http import TronHttp
from stablegate_common.core.addresses import display_address
from stablegate_common.core.assets import Asset, Family
from stablegate_gateway.fees.inputs import FEE_HISTORY_BLOCKS, TIP_PERCENTILE, median_tip
from stablegate_gateway.outgoing.planner import (
    Eip1559Fees,
    EvmDeposit,
    EvmFeeWallet,
    LegacyFees,
    TokenHolding,
    TronBlockRef,
    TronDeposit,
    TronFees,
    TronFeeWallet,
)

TRANSFER_SELECTOR = "0xa9059cbb"  # transfer(address,uint256)
BATCH = 100
CONCURRENCY = 8
_T = TypeVar("_T")


@dataclass(frozen=True)
class DepositSource:
    address: str  # canonical (lowercase EVM hex, base58 Tron)
    path: str


@dataclass(frozen=True)
class Unestimated:
    """A balance the node would not estimate a transfer of (it would revert)."""

    address: str
    symbol: str
    reason: str


def _word(value: int) -> str:
    return f"{value:064x}"


def _transfer_parameter(treasury20: str, amount: int) -> str:
    return treasury20.rjust(64, "0") + _word(amount)


def _quantity(value: Any, what: str) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ChainError(f"{what}: expected a hex quantity, got {value!r:.80}")
    try:
        return int(value, 16)
    except ValueError as exc:
        raise ChainError(f"{what}: expected a hex quantity, got {value!r:.80}") from exc


async def _bounded(items: Sequence[_T], work: Callable[[_T], Awaitable[Any]]) -> list[Any]:
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(item: _T) -> Any:
        async with slots:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


# --- EVM -------------------------------------------------------------------------------------


class EvmQuotes:
    def __init__(self, rpc_url: str, *, timeout_seconds: float = 10.0) -> None:
        self._client = EvmClient(rpc_url, timeout_seconds=timeout_seconds)
        self._rpc = JsonRpcTransport(rpc_url, timeout_seconds=timeout_seconds)

    async def close(self) -> None:
        await self._client.close()
        await self._rpc.close()

    async def chain_id(self) -> int:
        return await self._client.chain_id()

    async def head(self) -> int:
        return await self._client.head()

    async def fees(self, *, eip1559: bool) -> Eip1559Fees | LegacyFees:
        if not eip1559:
            return LegacyFees(await self._client.gas_price())
        history = await self._client.fee_history(FEE_HISTORY_BLOCKS, [TIP_PERCENTILE])
        return Eip1559Fees(history.next_base_fee, median_tip(history))

    async def latest_nonce(self, address: str) -> int:
        """The next nonce of `address` as of the latest block (mined ones only)."""
        return await self._client.transaction_count(address, "latest")

    async def fee_wallet(self, address: str, path: str) -> EvmFeeWallet:
        balance, nonce = await self._rpc.batch(
            [
                ("eth_getBalance", [address, "pending"]),
                ("eth_getTransactionCount", [address, "pending"]),
            ]
        )
        return EvmFeeWallet(
            display_address("evm", address),
            path,
            _quantity(balance, "eth_getBalance"),
            _quantity(nonce, "eth_getTransactionCount"),
        )

    async def deposits(
        self,
        sources: Sequence[DepositSource],
        assets: Sequence[Asset],
        treasury: str | None,
        *,
        confirmed_block: int,
    ) -> tuple[list[EvmDeposit], list[Unestimated]]:
        """Every source's facts; token balances as of `confirmed_block`; with `treasury`,
        the gas of sweeping each holding there (None: estimate 0, the caller estimates)."""
        deposits: list[EvmDeposit] = []
        refused: list[Unestimated] = []
        for start in range(0, len(sources), BATCH):
            chunk = sources[start : start + BATCH]
            got, failed = await self._chunk(chunk, assets, treasury, confirmed_block)
            deposits.extend(got)
            refused.extend(failed)
        return deposits, refused

    async def _chunk(
        self,
        chunk: Sequence[DepositSource],
        assets: Sequence[Asset],
        treasury: str | None,
        confirmed_block: int,
    ) -> tuple[list[EvmDeposit], list[Unestimated]]:
        queries = [(asset.contract, source.address) for source in chunk for asset in assets]
        balances = await self._client.token_balances(queries, confirmed_block)
        calls: list[Call] = []
        for source in chunk:
            calls.append(("eth_getBalance", [source.address, "latest"]))
            calls.append(("eth_getTransactionCount", [source.address, "pending"]))
        natives = await self._rpc.batch(calls)
        held = [
            (source, asset, balances[i * len(assets) + j])
            for i, source in enumerate(chunk)
            for j, asset in enumerate(assets)
            if balances[i * len(assets) + j] > 0
        ]
        estimates: dict[tuple[str, str], int | str] = (
            {(source.address, asset.symbol): 0 for source, asset, _ in held}
            if treasury is None
            else await self._estimates(held, treasury)
        )
        deposits, refused = [], []
        for i, source in enumerate(chunk):
            holdings = []
            for held_source, asset, balance in held:
                if held_source is not source:
                    continue
                estimate = estimates.get((source.address, asset.symbol), "no estimate")
                if isinstance(estimate, str):
                    refused.append(Unestimated(source.address, asset.symbol, estimate))
                    continue
                holdings.append(_holding("evm", asset, balance, estimate))
            deposits.append(
                EvmDeposit(
                    display_address("evm", source.address),
                    source.path,
                    _quantity(natives[2 * i], "eth_getBalance"),
                    _quantity(natives[2 * i + 1], "eth_getTransactionCount"),
                    tuple(holdings),
                )
            )
        return deposits, refused

    async def _estimates(
        self, held: Sequence[tuple[DepositSource, Asset, int]], treasury: str
    ) -> dict[tuple[str, str], int | str]:
        """Gas per (address, symbol) of sweeping it all to `treasury`, or the node's
        refusal as text."""
        answers = await self.transfer_estimates(
            [(source.address, asset.contract, treasury, balance) for source, asset, balance in held]
        )
        keys = [(source.address, asset.symbol) for source, asset, _ in held]
        return dict(zip(keys, answers, strict=True))

    async def transfer_estimates(
        self, transfers: Sequence[tuple[str, str, str, int]]
    ) -> list[int | str]:
        """Gas of each token transfer (source, contract, destination, amount), or the
        node's refusal as text. One batch; when any call in it fails, each is asked alone
        so one bad token does not sink the rest."""
        calls: list[Call] = [
            (
                "eth_estimateGas",
                [
                    {
                        "from": source,
                        "to": contract,
                        "data": TRANSFER_SELECTOR
                        + _transfer_parameter(destination.lower().removeprefix("0x"), amount),
                    }
                ],
            )
            for source, contract, destination, amount in transfers
        ]
        try:
            results = await self._rpc.batch(calls)
            return [_quantity(r, "eth_estimateGas") for r in results]
        except ChainError as exc:
            if not calls or isinstance(exc, ChainUnavailable):
                raise

        async def one(call: Call) -> int | str:
            try:
                return _quantity(await self._rpc.call(*call), "eth_estimateGas")
            except ChainError as exc:
                if isinstance(exc, ChainUnavailable):
                    raise
                return str(exc)[:200]

        return list(await _bounded(calls, one))


def _holding(family: Family, asset: Asset, balance: int, estimate: int) -> TokenHolding:
    contract = display_address(family, asset.contract)
    return TokenHolding(asset.symbol, contract, asset.decimals, balance, estimate)


# --- Tron ------------------------------------------------------------------------------------


def _int_field(answer: Any, name: str) -> int:
    """A java-tron numeric field; zero fields are left out of its answers."""
    value = answer.get(name, 0) if isinstance(answer, dict) else 0
    return integer(value, name)


class TronQuotes:
    def __init__(
        self, full_node_url: str, *, solidity_url: str = "", timeout_seconds: float = 10.0
    ) -> None:
        self._full = TronHttp(full_node_url, timeout_seconds=timeout_seconds)
        self._solid = TronHttp(solidity_url or full_node_url, timeout_seconds=timeout_seconds)
        self._client = TronClient(
            full_node_url, solidity_url=solidity_url, timeout_seconds=timeout_seconds
        )

    async def close(self) -> None:
        await self._full.close()
        await self._solid.close()
        await self._client.close()

    async def block_ref(self, *, now_ms: int, expiration_seconds: int) -> TronBlockRef:
        """TaPoS from the newest solidified block: it cannot be reorged away, and a
        transaction's reference must be among the last 65,536 blocks."""
        block = await self._solid.post("walletsolidity/getnowblock")
        block_id = block.get("blockID") if isinstance(block, dict) else None
        if not isinstance(block_id, str) or len(block_id) != 64:
            raise ChainError(f"walletsolidity/getnowblock: no blockID in {block!r:.200}")
        return TronBlockRef(
            ref_block_bytes=block_id[12:16],
            ref_block_hash=block_id[16:32],
            timestamp_ms=now_ms,
            expiration_ms=now_ms + expiration_seconds * 1000,
        )

    async def fees(self, fee_wallet: str) -> TronFees:
        answer = await self._full.post("wallet/getchainparameters")
        entries = answer.get("chainParameter") if isinstance(answer, dict) else None
        if not isinstance(entries, list):
            raise ChainError(f"wallet/getchainparameters: unexpected {answer!r:.200}")
        params = {e.get("key"): e.get("value", 0) for e in entries if isinstance(e, dict)}
        resource = await self._account_resource(fee_wallet)
        if not resource:
            raise ChainError(f"the Tron fee wallet {fee_wallet} has no account (send it TRX)")

        def param(name: str) -> int:
            if name not in params:
                raise ChainError(f"wallet/getchainparameters: no {name}")
            return integer(params[name], name)

        return TronFees(
            energy_price=param("getEnergyFee"),
            bandwidth_price=param("getTransactionFee"),
            create_new_account_fee=param("getCreateNewAccountFeeInSystemContract"),
            create_account_fee=param("getCreateAccountFee"),
            free_bandwidth=param("getFreeNetLimit"),
            total_energy_limit=_int_field(resource, "TotalEnergyLimit"),
            total_energy_weight=_int_field(resource, "TotalEnergyWeight"),
        )

    async def fee_wallet(self, address: str, path: str) -> TronFeeWallet:
        account = await self._full.post("wallet/getaccount", {"address": address, "visible": True})
        resource = await self._account_resource(address)
        delegatable = await self._full.post(
            "wallet/getcandelegatedmaxsize",
            {"owner_address": address, "type": 1, "visible": True},
        )
        return TronFeeWallet(
            address,
            path,
            _int_field(account, "balance"),
            _int_field(delegatable, "max_size"),
            max(0, _int_field(resource, "NetLimit") - _int_field(resource, "NetUsed")),
            max(0, _int_field(resource, "freeNetLimit") - _int_field(resource, "freeNetUsed")),
        )

    async def deposits(
        self, sources: Sequence[DepositSource], assets: Sequence[Asset], treasury: str | None
    ) -> tuple[list[TronDeposit], list[Unestimated]]:
        """Every source's facts; with `treasury`, the energy of sweeping each holding
        there (None: holdings carry estimate 0, for a caller that estimates its own)."""
        results = await _bounded(sources, lambda s: self._deposit(s, assets, treasury))
        deposits = [deposit for deposit, _ in results]
        refused = [r for _, failed in results for r in failed]
        return deposits, refused

    async def _deposit(
        self, source: DepositSource, assets: Sequence[Asset], treasury: str | None
    ) -> tuple[TronDeposit, list[Unestimated]]:
        address = source.address
        account = await self._full.post("wallet/getaccount", {"address": address, "visible": True})
        activated = isinstance(account, dict) and bool(account)
        bandwidth = 0
        if activated:
            resource = await self._account_resource(address)
            free = _int_field(resource, "freeNetLimit") - _int_field(resource, "freeNetUsed")
            staked = _int_field(resource, "NetLimit") - _int_field(resource, "NetUsed")
            bandwidth = max(0, free) + max(0, staked)
        holdings: list[TokenHolding] = []
        refused: list[Unestimated] = []
        for asset in assets:
            # The solidified state: the balance every final block leads to.
            balance = await self._client.token_balance(asset.contract, address, block=0)
            if not balance:
                continue
            if treasury is None:
                holdings.append(_holding("tron", asset, balance, 0))
                continue
            try:
                energy = await self._energy(address, asset.contract, treasury, balance)
            except ChainError as exc:
                if isinstance(exc, ChainUnavailable):
                    raise
                refused.append(Unestimated(address, asset.symbol, str(exc)[:200]))
                continue
            holdings.append(_holding("tron", asset, balance, energy))
        deposit = TronDeposit(
            address,
            source.path,
            _int_field(account, "balance"),
            activated,
            bandwidth,
            tuple(holdings),
        )
        return deposit, refused

    async def transfer_energies(
        self, transfers: Sequence[tuple[str, str, str, int]]
    ) -> list[int | str]:
        """Energy of each TRC-20 transfer (source, contract, destination, amount), or the
        node's refusal as text."""

        async def one(transfer: tuple[str, str, str, int]) -> int | str:
            try:
                return await self._energy(*transfer)
            except ChainError as exc:
                if isinstance(exc, ChainUnavailable):
                    raise
                return str(exc)[:200]

        return list(await _bounded(transfers, one))

    async def _account_resource(self, address: str) -> Any:
        return await self._full.post(
            "wallet/getaccountresource", {"address": address, "visible": True}
        )

    async def _energy(self, owner: str, contract: str, treasury: str, amount: int) -> int:
        body = {
            "owner_address": owner,
            "contract_address": contract,
            "function_selector": "transfer(address,uint256)",
            "parameter": _transfer_parameter(to_hex20(treasury), amount),
            "visible": True,
        }
        try:
            answer = await self._full.post("wallet/estimateenergy", body)
            field = "energy_required"
        except ChainError as exc:
            # Nodes without vm.estimateEnergy answer 404 or an Error: the constant call
            # reports the energy the same execution used.
            if isinstance(exc, ChainUnavailable):
                raise
            answer = await self._full.post("wallet/triggerconstantcontract", body)
            field = "energy_used"
        result = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(result, dict) or result.get("result") is not True or "message" in result:
            raise ChainError(f"energy estimate of {contract} from {owner}: {answer!r:.200}")
        energy = _int_field(answer, field)
        if energy <= 0:
            raise ChainError(f"energy estimate of {contract} from {owner}: {answer!r:.200}")
        return energy
