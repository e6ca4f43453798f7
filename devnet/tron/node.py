"""One devnet node: the chain, its dev accounts and the test-only operations behind the
`/_devnet/*` controls (mine, fork, fund, transfer, fail a transaction on chain), plus the
files that point services at it (state JSON and the asset-registry overlay).

Funding and test transfers are real signed transactions from the faucet or a dev
account, sent through the same broadcast checks as any client's, so they appear in
blocks with receipts and Transfer logs, and a fork moves them like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from devnet.tron.chain import Block, BroadcastError, Chain, ForkTxs, now_ms
from devnet.tron.encoding import (
    Hex41,
    address_of_key,
    address_word,
    selector,
    sign_txid,
    to_base58,
    to_hex41,
    word,
)
from devnet.tron.genesis import (
    FAUCET_INDEX,
    TOKENS,
    DevnetConfig,
    derive_accounts,
    genesis_ledger,
)
from devnet.tron.ledger import Executor, Fault
from devnet.tron.transactions import SignedTx, new_raw

DEFAULT_FEE_LIMIT = 50_000_000  # 50 TRX: above the 13.03 TRX worst case of a USDT transfer
STARVED_FEE_LIMIT = 1_000_000  # 1 TRX: runs out of energy on any token transfer
FailMode = Literal["REVERT", "OUT_OF_ENERGY"]


class ControlError(ValueError):
    """A control request the devnet cannot carry out; the message says why."""


@dataclass(frozen=True)
class Sent:
    txid: str
    block: int | None  # the block it went into when mined at once


class DevnetNode:
    def __init__(self, config: DevnetConfig) -> None:
        self.config = config
        self.accounts = derive_accounts(list(range(config.accounts)))
        (self.faucet,) = derive_accounts([FAUCET_INDEX])
        self.paused = False
        executor = Executor({spec.address: spec for spec in TOKENS.values()})
        ledger = genesis_ledger(config, self.accounts, self.faucet, now_ms())
        self.chain = Chain(
            executor,
            ledger,
            self.faucet.private_key,
            self.faucet.address,
            solidification_depth=config.solidification_depth,
        )
        if config.premine:
            self.mine(config.solidification_depth + 1)

    # --- blocks -----------------------------------------------------------------------------

    def mine(self, count: int = 1) -> list[Block]:
        if count < 1:
            raise ControlError("mine: count must be at least 1")
        return [self.chain.produce_block() for _ in range(count)]

    def fork(self, depth: int, txs: ForkTxs = "keep", blocks: int | None = None) -> list[Block]:
        if txs not in ("keep", "drop", "last"):
            raise ControlError("fork: txs must be keep, drop or last")
        try:
            return self.chain.fork(depth, txs, blocks)
        except ValueError as exc:
            raise ControlError(f"fork: {exc}") from exc

    # --- sending ----------------------------------------------------------------------------

    def key_for(self, sender: str | int) -> str:
        """The private key of a dev account (index or address) or of "faucet"."""
        if sender == "faucet":
            return self.faucet.private_key
        for account in self.accounts:
            if sender in (account.index, account.base58, account.address):
                return account.private_key
        raise ControlError(f"{sender!r} is not a dev account (give private_key instead)")

    def send_trx(self, private_key: str, to: str, amount_sun: int, *, mine: bool = True) -> Sent:
        value = {
            "amount": amount_sun,
            "owner_address": address_of_key(private_key),
            "to_address": _address(to),
        }
        return self._send(private_key, "TransferContract", value, 0, None, mine)

    def send_token(
        self,
        private_key: str,
        to: str,
        amount: int,
        *,
        token: str = "USDT",
        fee_limit: int | None = None,
        fail: FailMode | None = None,
        keep_logs: bool = False,
        mine: bool = True,
    ) -> Sent:
        """A TRC-20 `transfer(to, amount)`. `fail` makes it fail on chain: REVERT (the
        contract refuses), or OUT_OF_ENERGY (a fee_limit too low for the energy)."""
        spec = TOKENS.get(token.upper())
        if spec is None:
            raise ControlError(f"unknown token {token!r} (one of {', '.join(TOKENS)})")
        if fail not in (None, "REVERT", "OUT_OF_ENERGY"):
            raise ControlError("fail must be REVERT or OUT_OF_ENERGY")
        if fee_limit is None:
            fee_limit = STARVED_FEE_LIMIT if fail == "OUT_OF_ENERGY" else DEFAULT_FEE_LIMIT
        data = selector("transfer(address,uint256)") + address_word(_address(to)) + word(amount)
        value = {
            "data": data.hex(),
            "owner_address": address_of_key(private_key),
            "contract_address": spec.address,
        }
        fault = Fault(revert=fail == "REVERT", keep_logs=keep_logs) if fail or keep_logs else None
        return self._send(private_key, "TriggerSmartContract", value, fee_limit, fault, mine)

    def stake(
        self, private_key: str, amount_sun: int, resource: str = "ENERGY", *, mine: bool = True
    ) -> Sent:
        """A signed FreezeBalanceV2 (Stake 2.0) of `amount_sun` for `resource`."""
        value = {
            "owner_address": address_of_key(private_key),
            "frozen_balance": amount_sun,
            "resource": _resource(resource),
        }
        return self._send(private_key, "FreezeBalanceV2Contract", value, 0, None, mine)

    def delegate(
        self,
        private_key: str,
        to: str,
        amount_sun: int,
        resource: str = "ENERGY",
        *,
        undo: bool = False,
        mine: bool = True,
    ) -> Sent:
        """A signed DelegateResource of `amount_sun` of staked TRX to `to`, or with `undo`
        the UnDelegateResource that takes it back."""
        value = {
            "owner_address": address_of_key(private_key),
            "resource": _resource(resource),
            "balance": amount_sun,
            "receiver_address": _address(to),
        }
        kind = "UnDelegateResourceContract" if undo else "DelegateResourceContract"
        return self._send(private_key, kind, value, 0, None, mine)

    def set_prices(self, *, energy: int | None = None, bandwidth: int | None = None) -> None:
        """Change the burn prices (sun per energy / per byte) from now on, as a committee
        proposal would; `getenergyprices` / `getbandwidthprices` keep the history."""
        params, now = self.chain.executor.params, self.chain.clock()
        try:
            if energy is not None:
                params.set_price("ENERGY", energy, now)
            if bandwidth is not None:
                params.set_price("BANDWIDTH", bandwidth, now)
        except ValueError as exc:
            raise ControlError(f"set_prices: {exc}") from exc

    def fund(
        self, to: str, *, trx_sun: int = 0, tokens: dict[str, int] | None = None, mine: bool = True
    ) -> list[Sent]:
        """Give TRX (sun) and tokens (base units) from the faucet, as real transactions."""
        sent = []
        if trx_sun:
            sent.append(self.send_trx(self.faucet.private_key, to, trx_sun, mine=False))
        for symbol, amount in (tokens or {}).items():
            sent.append(
                self.send_token(self.faucet.private_key, to, amount, token=symbol, mine=False)
            )
        if not sent:
            raise ControlError("fund: give trx and/or tokens")
        if not mine:
            return sent
        block = self.mine()[0]
        return [Sent(s.txid, block.number) for s in sent]

    def _send(
        self,
        private_key: str,
        kind: str,
        value: dict[str, Any],
        fee_limit: int,
        fault: Fault | None,
        mine: bool,
    ) -> Sent:
        head = self.chain.head
        raw = new_raw(kind, value, head.block_id, head.timestamp, self.chain.clock(), fee_limit)
        unsigned = SignedTx.from_raw(raw)
        tx = unsigned.with_signature(sign_txid(unsigned.txid, private_key))
        if fault is not None:
            self.chain.faults[tx.txid] = fault
        try:
            self.chain.broadcast(tx)
        except BroadcastError as exc:
            self.chain.faults.pop(tx.txid, None)
            raise ControlError(f"broadcast refused: {exc}") from exc
        if not mine:
            return Sent(tx.txid, None)
        return Sent(tx.txid, self.mine()[0].number)

    # --- reading ----------------------------------------------------------------------------

    def token_balance(self, token: str, holder: str, *, solid: bool = False) -> int:
        balances = self.chain.ledger(solid).tokens.get(TOKENS[token.upper()].address, {})
        return balances.get(_address(holder), 0)

    def trx_balance(self, holder: str, *, solid: bool = False) -> int:
        account = self.chain.ledger(solid).accounts.get(_address(holder))
        return 0 if account is None else account.balance

    def status(self) -> dict[str, Any]:
        chain = self.chain
        return {
            "head": chain.head.number,
            "head_id": chain.head.block_id,
            "solid": chain.solid_number,
            "solid_id": chain.top(solid=True).block_id,
            "pending": len(chain.pool),
            "paused": self.paused,
            "block_time": self.config.block_time,
            "solidification_depth": chain.depth,
        }

    def describe(self, http_url: str) -> dict[str, Any]:
        """The devnet's state file: where it answers and the test data it holds."""
        return {
            "network": "tron",
            "http_url": http_url,
            "solidity_url": http_url,  # /walletsolidity/* is served on the same port
            "controls_url": http_url + "_devnet/",
            "block_time": self.config.block_time,
            "solidification_depth": self.chain.depth,
            "energy_price_sun": self.chain.executor.params.energy_price,
            "decimals": 6,
            "tokens": {symbol: to_base58(spec.address) for symbol, spec in TOKENS.items()},
            "accounts": [a.as_json() for a in self.accounts],
            "faucet": self.faucet.as_json(),
        }

    def assets_overlay(self) -> dict[str, Any]:
        """The `AssetRegistry.from_mapping` overlay (the look-alike is absent on purpose)."""
        assets = {
            symbol: {"contract": to_base58(TOKENS[symbol].address), "decimals": 6}
            for symbol in ("USDT", "USDC")
        }
        return {
            "networks": {
                "tron": {
                    "family": "tron",
                    "chain_id": None,
                    "confirmations": self.chain.depth,
                    "native_symbol": "TRX",
                    "display_name": "Tron devnet (TRC-20)",
                    "assets": assets,
                }
            }
        }


def _resource(resource: str) -> str:
    if resource not in ("ENERGY", "BANDWIDTH"):
        raise ControlError(f"resource must be ENERGY or BANDWIDTH, not {resource!r}")
    return resource


def _address(address: str) -> Hex41:
    try:
        return to_hex41(address)
    except ValueError as exc:
        raise ControlError(str(exc)) from exc
