"""The Tron chain client: head and blocks from the full node, finality from the solidity
API, TRC-20 Transfer logs and token reads over the java-tron HTTP API (chains.md §3.2).

Why direct HTTP rather than tronpy's client: the watcher needs
`gettransactioninfobyblocknum` and `getblockbylimitnext`, which tronpy does not wrap,
and every call must map the node's HTTP-200 errors to chain exceptions in one place
(`tron_http`). tronpy serves the address codec (`tron_decode`) and, in tests, signing.

Detection per block: read the block (its id, parent and transaction ids), then, only for
blocks holding a contract call, `gettransactioninfobyblocknum`, and keep the Transfer logs
of registered contracts from transactions whose receipt says SUCCESS. A transaction info
carries no block hash, so the block read beside it supplies the hash, and the two must
agree on the block's transactions (`tron_decode.decode_transfers`).

Finality: a block is final once solidified. `finalized_head()` reads the solidity API's
newest block (`/walletsolidity/getnowblock`), and `finalized_hashes()` the solidified
blocks' ids: the watcher engine confirms a transfer at or below the solidified height
only when its block is the solidified block there (a full node on a fork has another).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import SecretStr

from stablegate_common.chains.base import (
    BlockHeader,
    BlockNotFound,
    BroadcastRejected,
    ChainError,
    ChainUnavailable,
    TokenTransfer,
    TxReceipt,
)
from stablegate_common.chains.tron_decode import (
    TronBlock,
    block_number,
    decode_block,
    decode_transfers,
    integer,
    to_base58,
    to_hex20,
    to_hex41,
)
from stablegate_common.chains.tron_http import TronHttp

# The caller of a constant call must be an address; views need no real account.
ZERO_OWNER = "410000000000000000000000000000000000000000"
# java-tron's cap on one getblockbylimitnext call (endNum - startNum <= 100).
MAX_BLOCKS_PER_CALL = 100
_WORD_HEX = 64
_TX_ID_HEX = 64
# broadcasthex codes meaning the node already has the transaction: not an error to a retry.
_ALREADY_SENT_CODES = frozenset({"DUP_TRANSACTION_ERROR"})


class TronClient:
    """`ChainClient` (and `FinalizedHeadSource`) over a java-tron HTTP API.

    `solidity_url` is where `/walletsolidity/*` is served (java-tron's solidity HTTP port,
    8091 by default); empty means the full node's URL serves it too, as TronGrid does.
    """

    def __init__(
        self,
        full_node_url: str,
        *,
        solidity_url: str = "",
        api_key: SecretStr | None = None,
        timeout_seconds: float = 10.0,
        blocks_per_call: int = 50,
        receipt_concurrency: int = 4,
    ) -> None:
        if not 1 <= blocks_per_call <= MAX_BLOCKS_PER_CALL:
            raise ValueError(f"blocks_per_call must be in 1..{MAX_BLOCKS_PER_CALL}")
        self.full_node_url = full_node_url
        self._full = TronHttp(full_node_url, timeout_seconds=timeout_seconds, api_key=api_key)
        self._solid = (
            TronHttp(solidity_url, timeout_seconds=timeout_seconds, api_key=api_key)
            if solidity_url and solidity_url.rstrip("/") != full_node_url.rstrip("/")
            else self._full
        )
        self._blocks_per_call = blocks_per_call
        self._receipt_slots = asyncio.Semaphore(receipt_concurrency)

    async def __aenter__(self) -> TronClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- heads -------------------------------------------------------------------------

    async def head(self) -> int:
        path = "wallet/getnowblock"
        return block_number(await self._full.post(path), path)

    async def finalized_head(self) -> int:
        """The newest solidified block: it can no longer be reverted."""
        path = "walletsolidity/getnowblock"
        return block_number(await self._solid.post(path), path)

    async def finalized_header(self) -> BlockHeader:
        """The newest solidified block's header, from the solidity API itself (its number
        and timestamp: what a Tron expiration is judged against)."""
        path = "walletsolidity/getnowblock"
        block = decode_block(await self._solid.post(path), path)
        if block is None:
            raise ChainError(f"{path}: the node has no block yet")
        return block.header

    # -- blocks ------------------------------------------------------------------------

    async def headers(self, numbers: Sequence[int]) -> list[BlockHeader]:
        blocks = await self.blocks(numbers)
        return [b.header for b in blocks]

    async def blocks(self, numbers: Sequence[int]) -> list[TronBlock]:
        """These blocks in the order asked; BlockNotFound when the node lacks one."""
        found: dict[int, TronBlock] = {}
        for first, last in _runs(numbers):
            for start in range(first, last + 1, self._blocks_per_call):
                end = min(last, start + self._blocks_per_call - 1)
                for block in await self._fetch(start, end):
                    found[block.header.number] = block
        missing = [n for n in numbers if n not in found]
        if missing:
            raise BlockNotFound(missing[0])
        return [found[n] for n in numbers]

    async def finalized_hashes(self, numbers: Sequence[int]) -> dict[int, str]:
        """Block ids of the solidified chain at these heights, from the solidity API
        (`walletsolidity/getblockbynum` and `…/getblockbylimitnext`); heights the solidity
        node has not solidified are left out."""
        found: dict[int, str] = {}
        for first, last in _runs(numbers):
            for start in range(first, last + 1, self._blocks_per_call):
                end = min(last, start + self._blocks_per_call - 1)
                for block in await self._fetch(start, end, solid=True):
                    found[block.header.number] = block.header.hash
        return found

    async def _fetch(self, first: int, last: int, *, solid: bool = False) -> list[TronBlock]:
        http, api = (self._solid, "walletsolidity") if solid else (self._full, "wallet")
        if first == last:
            path = f"{api}/getblockbynum"
            block = decode_block(await http.post(path, {"num": first}), path)
            return [] if block is None else [_checked(block, first, first)]
        path = f"{api}/getblockbylimitnext"
        answer = await http.post(path, {"startNum": first, "endNum": last + 1})
        if answer == {}:
            return []  # nothing in the range (above the head)
        raw_blocks = answer.get("block") if isinstance(answer, dict) else None
        if not isinstance(raw_blocks, list):
            raise ChainError(f"{path}: expected {{'block': [...]}}, got {answer!r:.200}")
        decoded = [decode_block(raw, path) for raw in raw_blocks]
        return [_checked(b, first, last) for b in decoded if b is not None]

    # -- transfers ---------------------------------------------------------------------

    async def transfers(
        self, from_block: int, to_block: int, contracts: Sequence[str]
    ) -> list[TokenTransfer]:
        allowed = {to_hex20(c): to_base58(c) for c in contracts}
        if not allowed or from_block > to_block:
            return []
        blocks = await self.blocks(range(from_block, to_block + 1))
        with_calls = [b for b in blocks if b.log_tx_ids]
        per_block = await asyncio.gather(*(self._block_transfers(b, allowed) for b in with_calls))
        return [t for found in per_block for t in found]

    async def _block_transfers(
        self, block: TronBlock, allowed: dict[str, str]
    ) -> list[TokenTransfer]:
        path = "wallet/gettransactioninfobyblocknum"
        async with self._receipt_slots:
            infos = await self._full.post(path, {"num": block.header.number})
        return decode_transfers(block, infos, allowed, path)

    # -- token reads -------------------------------------------------------------------

    async def token_balance(self, contract: str, address: str, block: int | None = None) -> int:
        """`balanceOf(address)`. With `block` None: the full node's newest state. With a
        block: the solidified state. A Tron node keeps no past state to read at a given
        height, and the solidified state is the one every final block leads to; callers
        pass a block at the confirmed depth, which is what they get."""
        parameter = to_hex20(address).rjust(_WORD_HEX, "0")
        return await self._call_uint(
            contract, "balanceOf(address)", parameter, solid=block is not None
        )

    async def token_decimals(self, contract: str) -> int:
        return await self._call_uint(contract, "decimals()", "", solid=False)

    async def energy_price(self) -> int:
        """The current price of one energy unit in sun (for the Tron fee model)."""
        return await self._current_price("wallet/getenergyprices")

    async def bandwidth_price(self) -> int:
        """The current price of one bandwidth point (byte) in sun."""
        return await self._current_price("wallet/getbandwidthprices")

    # -- our own transactions ----------------------------------------------------------

    async def tx_receipt(self, tx_hash: str) -> TxReceipt | None:
        """`gettransactioninfobyid` of the full node: None (`{}`) while in no block. The
        info carries no block hash: the caller reads the block (and checks it holds the
        transaction)."""
        path = "wallet/gettransactioninfobyid"
        tx_id = _tx_id(tx_hash)
        info = await self._full.post(path, {"value": tx_id})
        if info == {} or (isinstance(info, dict) and "blockNumber" not in info):
            return None
        if not isinstance(info, dict):
            raise ChainError(f"{path}: expected an object, got {info!r:.200}")
        if str(info.get("id", "")).lower() != tx_id:
            raise ChainError(f"{path}: asked for {tx_id}, the node answered {info.get('id')!r}")
        receipt = info.get("receipt") or {}
        if not isinstance(receipt, dict):
            raise ChainError(f"{path}: receipt is not an object: {receipt!r:.200}")
        # System contracts (TRX transfer, stake, delegation) have no receipt result; a
        # contract call's is SUCCESS or the reason it failed (REVERT, OUT_OF_ENERGY, …).
        outcome = receipt.get("result", "SUCCESS")
        return TxReceipt(
            tx_hash=tx_id,
            block_number=integer(info["blockNumber"], f"{path}: blockNumber"),
            block_hash=None,
            success=info.get("result") != "FAILED" and outcome in ("SUCCESS", "DEFAULT"),
            fee_paid_base_units=integer(info.get("fee", 0), f"{path}: fee"),
            energy_used=integer(receipt.get("energy_usage_total", 0), f"{path}: energy"),
            bandwidth_used=integer(receipt.get("net_usage", 0), f"{path}: net_usage"),
        )

    async def solidified_tx_known(self, tx_hash: str) -> bool:
        """`walletsolidity/gettransactionbyid` is not `{}`: the transaction is in a
        solidified block (the solidity node has no pool)."""
        answer = await self._solid.post(
            "walletsolidity/gettransactionbyid", {"value": _tx_id(tx_hash)}
        )
        return answer != {} and answer is not None

    async def tx_known(self, tx_hash: str) -> bool:
        """`gettransactionbyid` is not `{}`: the node has the transaction (pool or block)."""
        answer = await self._full.post("wallet/gettransactionbyid", {"value": _tx_id(tx_hash)})
        return answer != {} and answer is not None

    async def send_raw_transaction(self, signed_hex: str) -> str:
        """`/wallet/broadcasthex` of a serialized, signed `protocol.Transaction`; returns
        the txID the node computed. DUP_TRANSACTION_ERROR (already pooled or mined) is sent."""
        path = "wallet/broadcasthex"
        given = signed_hex.removeprefix("0x")
        try:
            bytes.fromhex(given)
        except ValueError as exc:
            raise BroadcastRejected(f"{path}: the signed transaction is not hex") from exc
        try:
            answer = await self._full.post(path, {"transaction": given})
        except ChainError as exc:
            if type(exc) is ChainError:  # an {"Error": …}: the node cannot read it
                raise BroadcastRejected(exc.message) from exc
            raise
        if not isinstance(answer, dict):
            raise ChainError(f"{path}: expected an object, got {answer!r:.200}")
        tx_id = str(answer.get("txid", "")).lower()
        code = str(answer.get("code", ""))
        if answer.get("result") is True or code in _ALREADY_SENT_CODES:
            return _tx_id(tx_id)
        message = _message(answer.get("message"))
        if code == "SERVER_BUSY":
            raise ChainUnavailable(f"{path}: {code} {message}")
        raise BroadcastRejected(f"{path}: {code or 'refused'}: {message}")

    async def close(self) -> None:
        await self._full.close()
        if self._solid is not self._full:
            await self._solid.close()

    async def _call_uint(self, contract: str, selector: str, parameter: str, *, solid: bool) -> int:
        http, path = (
            (self._solid, "walletsolidity/triggerconstantcontract")
            if solid
            else (self._full, "wallet/triggerconstantcontract")
        )
        body = {
            "owner_address": ZERO_OWNER,
            "contract_address": to_hex41(contract),
            "function_selector": selector,
            "parameter": parameter,
        }
        answer = await http.post(path, body)
        label = f"{selector} on {to_base58(contract)}"
        word = _constant_word(answer, path, label)
        return int(word, 16)

    async def _current_price(self, path: str) -> int:
        """The last `time:price` pair of a `{"prices": "0:100,…,t:price"}` answer."""
        answer = await self._full.post(path)
        prices = answer.get("prices") if isinstance(answer, dict) else None
        if not isinstance(prices, str) or ":" not in prices:
            raise ChainError(f"{path}: expected 'time:price,…', got {answer!r:.200}")
        return integer(prices.rsplit(",", 1)[-1].split(":", 1)[1].strip(), f"{path}: price")


def _constant_word(answer: Any, path: str, label: str) -> str:
    """The first 32-byte word a constant call returned; ChainError for a revert, a
    refused call (`result.code`), or no return data (an address without code)."""
    result = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(result, dict):
        raise ChainError(f"{path}: {label}: unexpected answer {answer!r:.200}")
    if result.get("result") is not True or "message" in result:
        code = result.get("code", "REVERT")
        raise ChainError(f"{path}: {label} failed: {code} {_message(result.get('message'))}")
    words = answer.get("constant_result")
    word = str(words[0]).lower()[:_WORD_HEX] if isinstance(words, list) and words else ""
    if len(word) != _WORD_HEX or any(c not in "0123456789abcdef" for c in word):
        raise ChainError(f"{path}: {label} returned {words!r:.100}, not a uint256")
    return word


def _message(value: Any) -> str:
    """java-tron hex-encodes result messages; show them as text when they decode."""
    text = str(value or "")
    try:
        return bytes.fromhex(text).decode("utf-8")
    except ValueError:
        return text


def _tx_id(value: str) -> str:
    text = value.lower().removeprefix("0x")
    if len(text) != _TX_ID_HEX or any(c not in "0123456789abcdef" for c in text):
        raise ChainError(f"not a Tron transaction id: {value!r}")
    return text


def _checked(block: TronBlock, first: int, last: int) -> TronBlock:
    if not first <= block.header.number <= last:
        raise ChainError(
            f"asked for blocks {first}..{last}, the node answered block {block.header.number}"
        )
    return block


def _runs(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Distinct block numbers as consecutive runs (first, last), ascending."""
    runs: list[tuple[int, int]] = []
    for number in sorted(set(numbers)):
        if runs and number == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return runs


__all__ = ["MAX_BLOCKS_PER_CALL", "ZERO_OWNER", "TronClient"]
