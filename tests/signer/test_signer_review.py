"""Regression tests for the security review of the signer (one test or more per finding)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from stablegate_signer.documents import build_request, dump, load_request, load_response
from stablegate_signer.errors import (
    DerivationMismatch,
    InvalidDocument,
    PolicyViolation,
    SeedError,
)
from stablegate_signer.keys import SEED_ENV, read_seed
from stablegate_signer.policy import Policy, PolicyError
from stablegate_signer.units import format_amount
from tests.signer.support import (
    ETH_DEPOSIT,
    ETH_DEPOSIT_2,
    ETH_DEPOSIT_PATH,
    ETH_USDT,
    MNEMONIC,
    POLICY,
    eth_tx,
    request,
    signer,
    tron_resource,
    tron_trc20,
    write_policy,
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


# Finding 2: Tron timestamp/expiration were bounded by the request, not the signer's clock.
def test_tron_times_are_bounded_by_the_signers_clock(tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    year = 365 * 24 * 3600 * 1000
    future = {"timestamp": str(now + year), "expiration": str(now + year + 3_600_000)}
    with pytest.raises(PolicyViolation, match="timestamp"):
        signer(tmp_path).sign(request(tron_trc20(**future)))
    far = {"timestamp": str(now), "expiration": str(now + 2 * 3_600_000)}
    with pytest.raises(PolicyViolation, match="expiration"):
        signer(tmp_path).sign(request(tron_trc20(**far)))
    relaxed = POLICY.replace(
        'max_fee_per_request = "100"',
        'max_fee_per_request = "100"\nmax_expiration_seconds = 10800',
    )
    assert signer(tmp_path, relaxed).sign(request(tron_trc20(**far)))


# Finding 4: the seed, policy and state files must be writable by the signer's uid only.
def test_files_writable_by_others_are_refused(tmp_path: Path) -> None:
    policy_path = write_policy(tmp_path)
    policy_path.chmod(0o664)
    with pytest.raises(PolicyError, match="writable"):
        Policy.load(policy_path)
    policy_path.chmod(0o644)
    state = tmp_path / "policy.state.json"
    state.write_text("{}")
    state.chmod(0o666)
    with pytest.raises(PolicyError, match="writable"):
        signer(tmp_path).sign(request(eth_tx()))
    seed = tmp_path / "seed.txt"
    seed.write_text(MNEMONIC)
    seed.chmod(0o600)
    if os.getuid() == 0:
        os.chown(seed, 65534, -1)
        with pytest.raises(SeedError, match="owned"):
            read_seed(seed, None)


# Finding 9: a derivation mismatch must not reveal the address derived for the path.
def test_derivation_mismatch_does_not_reveal_the_derived_address(tmp_path: Path) -> None:
    tx = eth_tx(source={"address": ETH_DEPOSIT_2, "path": ETH_DEPOSIT_PATH})
    with pytest.raises(DerivationMismatch) as caught:
        signer(tmp_path).sign(request(tx))
    assert ETH_DEPOSIT not in caught.value.message
    assert caught.value.transaction == "ot_eth_1"
    assert caught.value.field == "source.address"


# Finding 12: the seed must not stay in the environment.
def test_the_seed_variable_is_removed_after_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SEED_ENV, MNEMONIC)
    read_seed(None, None)
    assert SEED_ENV not in os.environ


# Finding 11: at most 1,000 transactions (the sweep benchmark's size) and it fits in 2 MB.
def test_a_request_holds_1000_transactions_within_the_body_cap() -> None:
    from stablegate_signer.server import MAX_BODY

    many = [eth_tx(id=f"ot_{i}", nonce=str(i)) for i in range(1001)]
    with pytest.raises(InvalidDocument):
        build_request("sr_many", many)
    assert len(dump(build_request("sr_many", many[:1000])).encode()) < MAX_BODY


# Finding 6: every signed field is shown, and a delegation lock needs the policy's consent.
def test_describe_shows_every_signed_field_and_locks_need_policy(tmp_path: Path) -> None:
    from stablegate_signer.signing import describe

    tx = tron_resource("resource_delegation", lock=True, lock_period="864000")
    text = describe(request(tx))
    for shown in ("contract_type=DelegateResourceContract", "resource=ENERGY", "lock=True",
                  "lock_period=864000"):  # fmt: skip
        assert shown in text
    evm_text = describe(request(eth_tx()))
    assert "chain_id=1" in evm_text
    assert "nonce=0" in evm_text
    with pytest.raises(PolicyViolation, match="max_lock_period"):
        signer(tmp_path).sign(request(tx))
