"""TRC-20 tokens implemented natively: the devnet has no TVM, so a token contract is a
Python function that dispatches on the 4-byte selector of the call data, moves balances,
reports the energy a real contract would burn and emits `Transfer` logs shaped like
java-tron's (`address` 20-byte hex without `41`, 32-byte hex topics, hex data).

Energy numbers are documented constants, not measurements of this code: a USDT transfer
costs 64,285 energy to an address that already holds USDT and 130,285 to an empty one
(chains.md §3.5, with the dynamic energy factor at its cap); tokens without the factor use
the base cost. `balanceOf` costs 935 as in the captured `triggerconstantcontract`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak

from devnet.tron.encoding import Hex41, address_word, selector, to_hex41, word

TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)").hex()
ERROR_SELECTOR = selector("Error(string)")
VIEW_ENERGY = {"balanceOf": 935, "decimals": 213, "totalSupply": 224, "symbol": 702, "name": 702}
REVERT_ENERGY = 1_348  # spent up to the failed `require`, then the rest of the limit is kept


@dataclass(frozen=True)
class TokenSpec:
    symbol: str
    name: str
    decimals: int
    address: Hex41
    contract_name: str  # what `getcontract` reports
    energy_to_holder: int
    energy_to_empty: int
    # USDT-TRC20 declares `returns (bool)` but returns nothing true: callers see false on
    # success (chains.md §1.6). The devnet keeps that quirk so clients learn to trust the
    # receipt and the log, never the return value.
    returns_false: bool = False


@dataclass(frozen=True)
class Log:
    address: Hex41
    topics: tuple[str, ...]
    data: str


@dataclass
class CallResult:
    status: Literal["SUCCESS", "REVERT"]
    output: bytes
    energy: int
    logs: list[Log] = field(default_factory=list)
    message: str = ""


class UnknownFunction(Exception):
    pass


Balances = dict[Hex41, int]
_Handler = Callable[[TokenSpec, Balances, Hex41, bytes], CallResult]


def call_token(spec: TokenSpec, balances: Balances, caller: Hex41, data: bytes) -> CallResult:
    """Run one call against `balances` (mutated on success; callers pass a copy when the
    call must leave no trace, as a constant call or a failed transaction does)."""
    handler = _FUNCTIONS.get(data[:4])
    if handler is None:
        return _revert("function not found")
    try:
        return handler(spec, balances, caller, data[4:])
    except Exception:  # eth_abi raises several types for short or garbled arguments
        return _revert("malformed call data")


def _revert(reason: str) -> CallResult:
    output = ERROR_SELECTOR + encode(["string"], [reason])
    return CallResult("REVERT", output, REVERT_ENERGY, message=reason)


def _transfer(spec: TokenSpec, balances: Balances, caller: Hex41, args: bytes) -> CallResult:
    to_raw, amount = decode(["address", "uint256"], args)
    to = to_hex41(to_raw)
    held = balances.get(caller, 0)
    if amount > held:
        return _revert("transfer amount exceeds balance")
    energy = spec.energy_to_holder if balances.get(to, 0) else spec.energy_to_empty
    balances[caller] = held - amount
    balances[to] = balances.get(to, 0) + amount
    log = Log(
        address=spec.address,
        topics=(TRANSFER_TOPIC, address_word(caller).hex(), address_word(to).hex()),
        data=word(amount).hex(),
    )
    return CallResult("SUCCESS", word(0 if spec.returns_false else 1), energy, [log])


def _balance_of(spec: TokenSpec, balances: Balances, caller: Hex41, args: bytes) -> CallResult:
    (holder,) = decode(["address"], args)
    return CallResult("SUCCESS", word(balances.get(to_hex41(holder), 0)), VIEW_ENERGY["balanceOf"])


def _total_supply(spec: TokenSpec, balances: Balances, caller: Hex41, args: bytes) -> CallResult:
    return CallResult("SUCCESS", word(sum(balances.values())), VIEW_ENERGY["totalSupply"])


def _decimals(spec: TokenSpec, balances: Balances, caller: Hex41, args: bytes) -> CallResult:
    return CallResult("SUCCESS", word(spec.decimals), VIEW_ENERGY["decimals"])


def _symbol(spec: TokenSpec, balances: Balances, caller: Hex41, args: bytes) -> CallResult:
    return CallResult("SUCCESS", encode(["string"], [spec.symbol]), VIEW_ENERGY["symbol"])


def _name(spec: TokenSpec, balances: Balances, caller: Hex41, args: bytes) -> CallResult:
    return CallResult("SUCCESS", encode(["string"], [spec.name]), VIEW_ENERGY["name"])


_FUNCTIONS: dict[bytes, _Handler] = {
    selector("transfer(address,uint256)"): _transfer,
    selector("balanceOf(address)"): _balance_of,
    selector("totalSupply()"): _total_supply,
    selector("decimals()"): _decimals,
    selector("symbol()"): _symbol,
    selector("name()"): _name,
}


def _entry(
    name: str, inputs: list[tuple[str, str]], output: str | None, mutability: str
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "type": "Function", "stateMutability": mutability}
    if inputs:
        entry["inputs"] = [{"name": n, "type": t} for n, t in inputs]
    if output:
        entry["outputs"] = [{"type": output}]
    if mutability == "View":
        entry["constant"] = True
    return entry


def trc20_abi() -> list[dict[str, Any]]:
    """The ABI `getcontract` returns, in java-tron's `abi.entrys` form."""
    return [
        _entry("name", [], "string", "View"),
        _entry("symbol", [], "string", "View"),
        _entry("decimals", [], "uint8", "View"),
        _entry("totalSupply", [], "uint256", "View"),
        _entry("balanceOf", [("who", "address")], "uint256", "View"),
        _entry("transfer", [("_to", "address"), ("_value", "uint256")], "bool", "Nonpayable"),
        {
            "name": "Transfer",
            "type": "Event",
            "inputs": [
                {"indexed": True, "name": "from", "type": "address"},
                {"indexed": True, "name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
            ],
        },
    ]
