"""The signer's refusals: derivation, destinations, limits, fee caps, and the day's totals."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stablegate_signer.documents import max_network_fee
from stablegate_signer.errors import Declined, DerivationMismatch, PolicyViolation, SignerError
from stablegate_signer.policy import Policy, PolicyError
from stablegate_signer.units import format_amount
from tests.signer.support import (
    ATTACKER,
    ETH_DEPOSIT,
    ETH_DEPOSIT_2,
    ETH_DEPOSIT_PATH,
    EVM_CUSTOMER,
    POLICY,
    SEED,
    TRON_DEPOSIT,
    bsc_tx,
    eth_topup,
    eth_tx,
    request,
    signer,
    tron_resource,
    tron_trc20,
    tron_trx,
    write_policy,
)


def _usdt(amount: int) -> dict[str, str]:
    return {"base_units": str(amount * 10**6), "decimal": str(amount)}


def _payout(tx_id: str, amount: int, nonce: str) -> dict[str, Any]:
    return eth_tx(
        id=tx_id,
        purpose="payout",
        nonce=nonce,
        destination={"address": EVM_CUSTOMER, "path": None},
        amount=_usdt(amount),
    )


Refusal = tuple[str, list[dict[str, Any]], type[SignerError], str]


def refusals() -> list[Refusal]:
    """Built when a test runs (Tron times are checked against the signer's clock)."""
    return [
        (
            "source does not derive from its path",
            [eth_tx(source={"address": ETH_DEPOSIT_2, "path": ETH_DEPOSIT_PATH})],
            DerivationMismatch,
            "source.address",
        ),
        (
            "own destination does not derive from its path",
            [eth_topup(destination={"address": ETH_DEPOSIT_2, "path": ETH_DEPOSIT_PATH})],
            DerivationMismatch,
            "destination.address",
        ),
        (
            "sweep outside the treasury list",
            [eth_tx(destination={"address": ATTACKER, "path": None})],
            PolicyViolation,
            "destination.address",
        ),
        (
            "Tron sweep outside the treasury list",
            [
                tron_trc20(
                    destination={"address": "TEkxiTehnzSmSe2XqrBj4w32RUN966rdz8", "path": None}
                )
            ],
            PolicyViolation,
            "destination.address",
        ),
        (
            "payouts over the per-request limit",
            [_payout("ot_p1", 60, "0"), _payout("ot_p2", 60, "1")],
            PolicyViolation,
            "amount",
        ),
        (
            "refund over the per-transaction limit",
            [bsc_tx(amount={"base_units": str(51 * 10**18), "decimal": "51"})],
            PolicyViolation,
            "amount",
        ),
        (
            "top-up over its limit",
            [eth_topup(amount={"base_units": str(2 * 10**16), "decimal": "0.02"})],
            PolicyViolation,
            "amount",
        ),
        (
            "network fee per transaction over the cap",
            [eth_tx(max_fee_per_gas="200000000000")],  # 65,000 x 200 gwei = 0.013 ETH > 0.01
            PolicyViolation,
            "fee",
        ),
        (
            "network fee per request over the cap",  # 6 x 65,000 x 150 gwei = 0.0585 ETH > 0.05
            [eth_tx(id=f"ot_{n}", nonce=str(n), max_fee_per_gas="150000000000") for n in range(6)],
            PolicyViolation,
            "fee",
        ),
        (
            "Tron fee_limit over the cap",
            [tron_trc20(fee_limit="45000000")],
            PolicyViolation,
            "fee",
        ),
        ("chain id not the policy's", [eth_tx(chain_id="31337")], PolicyViolation, "chain_id"),
        (
            "a token under a known symbol with another contract",
            [eth_tx(asset={"symbol": "USDT", "decimals": "6", "contract": ETH_DEPOSIT_2})],
            PolicyViolation,
            "asset",
        ),
        ("purpose not in the policy", [eth_tx(purpose="refund")], PolicyViolation, "purpose"),
        (
            "source path outside the prefixes",
            [
                eth_tx(
                    source={
                        "address": SEED.address("m/44'/60'/7'/0/0", "ethereum"),
                        "path": "m/44'/60'/7'/0/0",
                    }
                )
            ],
            PolicyViolation,
            "source.path",
        ),
        (
            "expired Tron transaction",
            [tron_trx(timestamp="1000", expiration="2000")],
            PolicyViolation,
            "expiration",
        ),
        (
            "one bad transaction refuses the whole request",
            [
                eth_tx(),
                tron_trc20(),
                tron_trx(destination={"address": TRON_DEPOSIT, "path": "m/44'/195'/0'/0/9"}),
            ],
            DerivationMismatch,
            "destination.address",
        ),
    ]


@pytest.mark.parametrize("case", [r[0] for r in refusals()])
def test_refusals_name_the_transaction_and_field_and_sign_nothing(
    tmp_path: Path, case: str
) -> None:
    _, txs, error, field = next(r for r in refusals() if r[0] == case)
    s = signer(tmp_path)
    with pytest.raises(error) as info:
        s.sign(request(*txs))
    assert type(info.value) is error, info.value.describe()
    assert info.value.field == field, info.value.describe()
    assert info.value.transaction in {t["id"] for t in txs}
    assert not (tmp_path / "policy.state.json").exists()


def test_everything_the_policy_allows_is_signed_and_counted(tmp_path: Path) -> None:
    s = signer(tmp_path)
    txs = [eth_tx(), eth_topup(), bsc_tx(), tron_trc20(), tron_trx()]
    txs += [tron_resource(p) for p in ("stake", "resource_delegation", "resource_undelegation")]
    response = s.sign(request(*txs))
    assert [t.id for t in response.transactions] == [t["id"] for t in txs]
    totals = window_totals(tmp_path)
    assert totals["ethereum/sweep/USDT"] == 12500000
    assert totals["bsc/refund/USDT"] == 25 * 10**18
    assert totals["ethereum/network_fee/ETH"] > 0  # the worst-case fees are counted too


def window_totals(tmp_path: Path) -> dict[str, int]:
    state = json.loads((tmp_path / "policy.state.json").read_text())
    out: dict[str, int] = {}
    for entry in state["signed"]:
        out[entry["key"]] = out.get(entry["key"], 0) + int(entry["base_units"])
    return out


def test_per_day_limit_is_a_rolling_24_hours(tmp_path: Path) -> None:
    clock = [datetime(2026, 12, 7, 23, 50, tzinfo=UTC)]
    s = signer(tmp_path)
    s.clock = lambda: clock[0]
    s.sign(request(_payout("ot_a", 90, "0"), request_id="sr_a"))
    with pytest.raises(PolicyViolation, match="per day") as info:
        s.sign(request(_payout("ot_b", 90, "1"), request_id="sr_b"))
    assert info.value.transaction == "ot_b"
    assert window_totals(tmp_path) == {
        "ethereum/payout/USDT": 90_000_000,
        "ethereum/network_fee/ETH": window_totals(tmp_path)["ethereum/network_fee/ETH"],
    }
    s.sign(request(_payout("ot_c", 60, "1"), request_id="sr_c"))  # 150 is the limit: allowed
    # Past midnight the calendar day is new, but the 24 hours are not: still refused.
    clock[0] = datetime(2026, 12, 8, 0, 10, tzinfo=UTC)
    with pytest.raises(PolicyViolation, match="per day"):
        s.sign(request(_payout("ot_d", 1, "2"), request_id="sr_d"))
    # 24 hours after the first two: they have left the window, and the file forgets them.
    clock[0] = datetime(2026, 12, 8, 23, 50, 1, tzinfo=UTC)
    s.sign(request(_payout("ot_e", 90, "2"), request_id="sr_e"))
    assert window_totals(tmp_path)["ethereum/payout/USDT"] == 90_000_000


def test_a_clock_set_back_behind_the_last_signing_is_refused(tmp_path: Path) -> None:
    clock = [datetime(2026, 12, 7, 12, 0, tzinfo=UTC)]
    s = signer(tmp_path)
    s.clock = lambda: clock[0]
    s.sign(request(_payout("ot_a", 10, "0"), request_id="sr_a"))
    before = (tmp_path / "policy.state.json").read_bytes()
    clock[0] = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # a day back: the window would reopen
    with pytest.raises(PolicyError, match="clock"):
        s.sign(request(_payout("ot_b", 10, "1"), request_id="sr_b"))
    assert (tmp_path / "policy.state.json").read_bytes() == before
    clock[0] = datetime(2026, 12, 7, 11, 59, tzinfo=UTC)  # within the slack of an NTP step
    s.sign(request(_payout("ot_c", 10, "1"), request_id="sr_c"))


def test_network_fees_have_a_24_hour_cap_per_network(tmp_path: Path) -> None:
    # Every request's worst-case fee fits the per-request cap; the day's sum does not.
    fee = max_network_fee(request(_payout("ot_x", 1, "0")).transactions[0])
    capped = POLICY.replace(
        'max_fee_per_request = "0.05"',
        f'max_fee_per_request = "0.05"\nmax_fee_per_day = "{format_amount(2 * fee, 18)}"',
        1,
    )
    assert capped != POLICY
    s = signer(tmp_path, capped)
    s.sign(request(_payout("ot_a", 1, "0"), request_id="sr_a"))
    s.sign(request(_payout("ot_b", 1, "1"), request_id="sr_b"))
    with pytest.raises(PolicyViolation, match="network fee per day") as info:
        s.sign(request(_payout("ot_c", 1, "2"), request_id="sr_c"))
    assert info.value.field == "fee"


def test_a_calendar_day_state_file_still_counts(tmp_path: Path) -> None:
    # The earlier format: {"day": …, "totals": …}; read as signed at the end of that day.
    clock = [datetime(2026, 12, 8, 9, 0, tzinfo=UTC)]
    (tmp_path / "policy.state.json").write_text(
        json.dumps({"day": "2026-12-07", "totals": {"ethereum/payout/USDT": "140000000"}})
    )
    s = signer(tmp_path)
    s.clock = lambda: clock[0]
    with pytest.raises(PolicyViolation, match="per day"):
        s.sign(request(_payout("ot_a", 20, "0"), request_id="sr_a"))
    clock[0] = datetime(2026, 12, 9, 0, 0, 1, tzinfo=UTC)
    s.sign(request(_payout("ot_b", 20, "0"), request_id="sr_b"))
    assert window_totals(tmp_path)["ethereum/payout/USDT"] == 20_000_000


def test_declining_signs_nothing_and_records_nothing(tmp_path: Path) -> None:
    shown: list[str] = []
    confirm: Callable[[str], bool] = lambda text: shown.append(text) is not None  # noqa: E731
    with pytest.raises(Declined):
        signer(tmp_path).sign(request(eth_tx()), confirm=confirm)
    assert "12.5 USDT" in shown[0]
    assert "0x1111111111111111111111111111111111111111" in shown[0]
    assert not (tmp_path / "policy.state.json").exists()


def test_another_seed_refuses_every_source(tmp_path: Path) -> None:
    from tests.signer.support import OTHER_MNEMONIC

    with pytest.raises(DerivationMismatch):
        signer(tmp_path, mnemonic=OTHER_MNEMONIC).sign(request(eth_tx()))


BAD_POLICIES = [
    (
        "sweep to any",
        POLICY.replace(
            'destinations = ["0x1111111111111111111111111111111111111111"]', 'destinations = "any"'
        ),
    ),
    (
        "float amount",
        POLICY.replace('max_fee_per_transaction = "0.01"', "max_fee_per_transaction = 0.01"),
    ),
    (
        "any without limits",
        POLICY.replace('limits.USDT = { per_request = "100", per_day = "150" }', ""),
    ),
    ("unknown key", POLICY.replace("chain_id = 56", "chain_id = 56\nmax_gas = 1")),
    ("wrong chain", POLICY.replace("chain_id = 56", "chain_id = 1")),
    (
        "lower-case treasury",
        POLICY.replace("0x1111111111111111111111111111111111111111", ATTACKER.lower()),
    ),
    ("too precise", POLICY.replace('per_request = "100"', 'per_request = "100.0000001"')),
    (
        "top-up to a list",
        POLICY.replace(
            '[networks.ethereum.purposes.fee_topup]\ndestinations = "own"',
            f'[networks.ethereum.purposes.fee_topup]\ndestinations = ["{ETH_DEPOSIT}"]',
        ),
    ),
]


@pytest.mark.parametrize(("case", "text"), BAD_POLICIES, ids=[c[0] for c in BAD_POLICIES])
def test_bad_policy_files_are_refused(tmp_path: Path, case: str, text: str) -> None:
    assert text != POLICY, case
    with pytest.raises(PolicyError):
        Policy.load(write_policy(tmp_path, text))
