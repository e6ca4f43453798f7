"""The signing request: field validation, the digest and its canonical form."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stablegate_signer.documents import (
    build_request,
    compute_digest,
    dump,
    load_request,
    parse_request,
    request_digest,
)
from stablegate_signer.errors import DigestMismatch, InvalidDocument
from tests.signer.support import (
    ETH_DEPOSIT,
    ETH_TREASURY,
    bsc_tx,
    eth_topup,
    eth_tx,
    request,
    tron_resource,
    tron_trc20,
    tron_trx,
)

FULL = request(
    eth_tx(),
    eth_topup(),
    bsc_tx(),
    tron_trc20(),
    tron_trx(),
    tron_resource("stake"),
    tron_resource("resource_delegation"),
    tron_resource("resource_undelegation"),
)
DOC: dict[str, Any] = json.loads(dump(FULL))


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, (*path, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaves(v, (*path, i))]
    return [path]


LEAVES = [p for p in _leaves(DOC) if p != ("digest",)]


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _get(doc: dict[str, Any], path: tuple[Any, ...]) -> Any:
    node: Any = doc
    for part in path:
        node = node[part]
    return node


def _changed(value: Any) -> Any:
    if value is None:
        return "x"
    if isinstance(value, bool):
        return not value
    if isinstance(value, str) and value.isdigit():
        return str(int(value) + 1)
    if isinstance(value, str):
        return value[:-1] + ("1" if value[-1:] != "1" else "2")
    return value + 1


def test_round_trip_keeps_the_digest() -> None:
    again = load_request(dump(FULL))
    assert again == FULL
    assert compute_digest(again) == FULL.digest
    assert FULL.digest == request_digest(DOC)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(LEAVES))
def test_any_change_to_any_field_changes_the_digest_and_is_refused(path: tuple[Any, ...]) -> None:
    doc = copy.deepcopy(DOC)
    _set(doc, path, _changed(_get(doc, path)))
    assert request_digest(doc) != FULL.digest
    with pytest.raises(InvalidDocument):  # digest mismatch, or a field rule, refuses it
        parse_request(doc)


def test_a_change_with_its_digest_recomputed_still_fails_the_field_rules() -> None:
    # The digest is integrity, not authority: a gateway may recompute it, so the summary and
    # every field are checked on their own (here the summary lies about a total).
    doc = copy.deepcopy(DOC)
    doc["summary"]["totals"][0]["base_units"] = "1"
    doc["digest"] = request_digest(doc)
    with pytest.raises(InvalidDocument) as info:
        parse_request(doc)
    assert info.value.field == "summary"


def _shuffled(node: Any, rng: random.Random) -> Any:
    if isinstance(node, dict):
        items = list(node.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(node, list):
        return [_shuffled(v, rng) for v in node]
    return node


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([None, 0, 1, 4, "\t"]))
def test_key_order_and_whitespace_do_not_change_the_digest(seed: int, indent: Any) -> None:
    text = json.dumps(_shuffled(DOC, random.Random(seed)), indent=indent)
    assert load_request(text).digest == FULL.digest
    assert compute_digest(load_request(text)) == FULL.digest


def test_omitted_optional_fields_canonicalise_as_null() -> None:
    doc = copy.deepcopy(DOC)
    del doc["transactions"][0]["destination"]["path"]  # default None, same canonical form
    assert parse_request(doc).digest == FULL.digest


def test_digest_mismatch_is_named() -> None:
    doc = copy.deepcopy(DOC)
    doc["digest"] = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch) as info:
        parse_request(doc)
    assert info.value.field == "digest"


def _bad(tx: dict[str, Any], **over: Any) -> dict[str, Any]:
    return tx | over


BAD_TRANSACTIONS = [
    ("JSON number for an amount", _bad(eth_tx(), nonce=0), "nonce"),
    ("negative nonce", _bad(eth_tx(), nonce="-1"), "nonce"),
    ("leading zero", _bad(eth_tx(), gas="065000"), "gas"),
    ("float-looking", _bad(eth_tx(), gas="65000.0"), "gas"),
    (
        "lower-case address",
        _bad(eth_tx(), destination={"address": ETH_DEPOSIT.lower()}),
        "destination.address",
    ),
    (
        "bad checksum",
        _bad(eth_tx(), destination={"address": ETH_DEPOSIT.replace("E", "e", 1)}),
        "destination.address",
    ),
    ("tip above max fee", _bad(eth_tx(), max_priority_fee_per_gas="3000000000"), None),
    ("BSC chain id on Ethereum", _bad(eth_tx(), chain_id="56"), "chain_id"),
    ("Ethereum chain id on BSC", _bad(bsc_tx(), chain_id="1"), "chain_id"),
    ("chain id 0", _bad(eth_tx(), chain_id="0"), "chain_id"),
    ("legacy fields on Ethereum", _bad(eth_tx(), gas_price="1"), "gas_price"),
    ("missing chain id", {k: v for k, v in eth_tx().items() if k != "chain_id"}, "chain_id"),
    ("unknown field", _bad(eth_tx(), data="0xdeadbeef"), "data"),
    ("decimal disagrees", _bad(eth_tx(), amount={"base_units": "1", "decimal": "1"}), None),
    ("zero amount", _bad(eth_tx(), amount={"base_units": "0", "decimal": "0"}), None),
    (
        "Tron path on Ethereum",
        _bad(eth_tx(), source={"address": ETH_DEPOSIT, "path": "m/44'/195'/0'/0/0"}),
        None,
    ),
    ("source without path", _bad(eth_tx(), source={"address": ETH_DEPOSIT}), "source.path"),
    ("stake on EVM", _bad(eth_tx(), purpose="stake"), "purpose"),
    ("top-up of a token", _bad(eth_tx(), purpose="fee_topup"), None),
    ("top-up to a foreign address", _bad(eth_topup(), destination={"address": ETH_TREASURY}), None),
    (
        "bad Tron checksum",
        _bad(tron_trc20(), destination={"address": "TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HD"}),
        None,
    ),
    ("TRC-20 as TransferContract", _bad(tron_trc20(), contract_type="TransferContract"), None),
    ("TRX transfer with fee_limit", _bad(tron_trx(), fee_limit="1000"), "fee_limit"),
    ("TRC-20 without fee_limit", _bad(tron_trc20(), fee_limit=None), "fee_limit"),
    ("fee_limit above 15000 TRX", _bad(tron_trc20(), fee_limit="15000000001"), "fee_limit"),
    ("expiration over 24 h", _bad(tron_trc20(), timestamp="1", expiration="86400002"), None),
    ("expiration before timestamp", _bad(tron_trc20(), timestamp="5", expiration="4"), None),
    ("short ref_block_hash", _bad(tron_trc20(), ref_block_hash="abcd"), "ref_block_hash"),
    ("delegation without lock", _bad(tron_resource("resource_delegation"), lock=None), None),
    (
        "delegation of under 1 TRX",
        _bad(tron_resource("stake"), amount={"base_units": "1", "decimal": "0.000001"}),
        None,
    ),
    ("bool as string", _bad(tron_resource("resource_delegation"), lock="false"), "lock"),
]


@pytest.mark.parametrize(
    ("case", "tx", "field"), BAD_TRANSACTIONS, ids=[c[0] for c in BAD_TRANSACTIONS]
)
def test_field_rules_refuse_and_name_the_transaction(
    case: str, tx: dict[str, Any], field: str | None
) -> None:
    with pytest.raises(InvalidDocument) as info:
        build_request("sr_bad", [eth_tx(id="ot_ok", nonce="99"), tx])
    assert info.value.transaction == tx["id"], case
    if field is not None:
        assert info.value.field is not None
        assert info.value.field.endswith(field), info.value.describe()


def test_floats_in_json_are_refused() -> None:
    text = dump(FULL).replace('"version": 1', '"version": 1.0')
    with pytest.raises(InvalidDocument, match="not allowed"):
        load_request(text)


def test_duplicate_ids_and_nonces_are_refused() -> None:
    with pytest.raises(InvalidDocument, match="unique"):
        build_request("sr_dup", [eth_tx(), eth_tx(nonce="1")])
    with pytest.raises(InvalidDocument, match="nonce"):
        build_request("sr_dup", [eth_tx(), eth_tx(id="ot_eth_2")])
