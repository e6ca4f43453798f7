"""Regression tests for the security review of the signer (one test or more per finding)."""

from __future__ import annotations

from typing import Any

import pytest

from stablegate_signer.documents import build_request, dump, load_request, load_response
from stablegate_signer.errors import InvalidDocument
from stablegate_signer.units import format_amount
from tests.signer.support import (
    ETH_DEPOSIT_PATH,
    ETH_USDT,
    eth_tx,
    request,
    tron_trc20,
)


# Finding 7: `$` matched before a trailing newline; leading zeros aliased path indexes.
@pytest.mark.parametrize(
    "over",
    [
        {"nonce": "5\n"},
        {"nonce": "05"},
        {"source": {"address": "x", "path": ETH_DEPOSIT_PATH + "\n"}},
        {"source": {"address": "x", "path": "m/44'/60'/0'/0/00"}},
    ],
)
def test_trailing_newlines_and_leading_zeros_are_refused(over: dict[str, Any]) -> None:
    tx = eth_tx()
    if "source" in over:
        over = {"source": {"address": tx["source"]["address"], "path": over["source"]["path"]}}
    with pytest.raises(InvalidDocument):
        build_request("sr_nl", [tx | over])


# Finding 8: duplicate JSON keys (last wins) were accepted.
def test_duplicate_json_keys_are_refused() -> None:
    text = dump(request(eth_tx()))
    doubled = text.replace('"request_id":', '"request_id": "sr_other",\n  "request_id":', 1)
    with pytest.raises(InvalidDocument, match="duplicate"):
        load_request(doubled)
    with pytest.raises(InvalidDocument, match="duplicate"):
        load_response('{"format": "a", "format": "b"}')


# Finding 10: deep nesting raised RecursionError.
def test_deeply_nested_json_is_an_invalid_document() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(InvalidDocument):
        load_request(deep)
    with pytest.raises(InvalidDocument):
        load_response(deep)
    with pytest.raises(InvalidDocument, match="deep"):
        load_request('{"format": ' + "[" * 40 + "]" * 40 + "}")


# Finding 14: a TRC-20 amount is a uint256 in call data, not an int64.
def test_trc20_amounts_above_int64_are_accepted() -> None:
    big = 2**63 + 1
    amount = {"base_units": str(big), "decimal": format_amount(big, 6)}
    assert build_request("sr_big", [tron_trc20(amount=amount)])


# Finding 15: the zero address and the token contract itself are never destinations.
def test_burn_destinations_are_refused() -> None:
    zero = "0x0000000000000000000000000000000000000000"
    with pytest.raises(InvalidDocument, match="zero address"):
        build_request("sr_burn", [eth_tx(destination={"address": zero, "path": None})])
    with pytest.raises(InvalidDocument, match="token contract"):
        build_request("sr_burn", [eth_tx(destination={"address": ETH_USDT, "path": None})])
    tron_zero = "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb"
    with pytest.raises(InvalidDocument, match="zero address"):
        build_request("sr_burn", [tron_trc20(destination={"address": tron_zero, "path": None})])
