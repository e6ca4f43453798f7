"""The devnet's Stake 2.0 parts without HTTP: the protobuf reader `broadcasthex` uses
(round trips for every contract type it runs, tronpy's bytes, malformed input), and the
resource rules (energy per stake, usage recovery, usage moving back on undelegate,
bandwidth paid by one source).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tronpy.proto import tron_pb2
from tronpy.proto.transaction import _raw_data_to_protobuf

from devnet.tron.encoding import TYPE_URL, EncodingError, encode_raw_data
from devnet.tron.ledger import Account, Call, Executor, Ledger
from devnet.tron.protobuf import ProtobufError, decode_transaction
from devnet.tron.resources import (
    WINDOW_MS,
    NetworkParams,
    energy_limit,
    energy_used,
    recovered,
)
from devnet.tron.transactions import SignedTx, normalize_raw
from tests.devnet.tron_signing import transaction_hex

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "41" + b.hex())
amounts = st.integers(min_value=1, max_value=2**63 - 1)
resources = st.sampled_from(["BANDWIDTH", "ENERGY", "TRON_POWER"])
TRX = 1_000_000
OWNER, RECEIVER = "41" + "11" * 20, "41" + "22" * 20


@st.composite
def stake_values(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(
        st.sampled_from(
            [
                "FreezeBalanceV2Contract",
                "UnfreezeBalanceV2Contract",
                "DelegateResourceContract",
                "UnDelegateResourceContract",
            ]
        )
    )
    value: dict[str, Any] = {"owner_address": draw(addresses), "resource": draw(resources)}
    if kind == "FreezeBalanceV2Contract":
        value["frozen_balance"] = draw(amounts)
    elif kind == "UnfreezeBalanceV2Contract":
        value["unfreeze_balance"] = draw(amounts)
    else:
        value["balance"] = draw(amounts)
        value["receiver_address"] = draw(addresses)
        if kind == "DelegateResourceContract" and draw(st.booleans()):
            value["lock"] = True
            value["lock_period"] = draw(st.integers(min_value=1, max_value=864_000))
    return kind, value


@settings(max_examples=150, deadline=None)
@given(stake_values(), st.binary(min_size=65, max_size=65), st.integers(1, 2**62))
def test_stake_transactions_round_trip_through_protobuf(
    contract: tuple[str, dict[str, Any]], signature: bytes, expiration: int
) -> None:
    kind, value = contract
    raw = normalize_raw(
        {
            "contract": [
                {"parameter": {"value": value, "type_url": TYPE_URL.format(kind)}, "type": kind}
            ],
            "ref_block_bytes": "abcd",
            "ref_block_hash": "0123456789abcdef",
            "expiration": expiration,
            "timestamp": expiration - 60_000,
        },
        visible=False,
    )
    tx = SignedTx.from_raw(raw, (signature.hex(),))
    decoded, signatures = decode_transaction(
        bytes.fromhex(transaction_hex(tx.raw_hex, [signature.hex()]))
    )
    assert signatures == (signature.hex(),)
    again = SignedTx.from_raw(normalize_raw(decoded, visible=False), signatures)
    assert again.raw == tx.raw
    assert again.txid == tx.txid


def test_tronpys_serialized_transactions_decode_to_the_same_txid() -> None:
    raw = {
        "contract": [
            {
                "parameter": {
                    "value": {
                        "owner_address": OWNER,
                        "contract_address": RECEIVER,
                        "data": "a9059cbb" + "00" * 64,
                    },
                    "type_url": TYPE_URL.format("TriggerSmartContract"),
                },
                "type": "TriggerSmartContract",
            }
        ],
        "ref_block_bytes": "1c8b",
        "ref_block_hash": "d78785ed02dd918f",
        "expiration": 1777437813000,
        "timestamp": 1777437756016,
        "fee_limit": 30_000_000,
    }
    message = tron_pb2.Transaction(raw_data=_raw_data_to_protobuf(raw), signature=[b"\x01" * 65])
    decoded, signatures = decode_transaction(message.SerializeToString())
    assert decoded == raw
    assert signatures == ("01" * 65,)
    assert encode_raw_data(decoded) == message.raw_data.SerializeToString()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (bytes.fromhex("0a05"), ProtobufError),  # truncated raw_data
        (bytes.fromhex("0a0480"), ProtobufError),  # truncated varint inside
        (bytes.fromhex("3a00"), EncodingError),  # field 7: not part of Transaction
        (bytes.fromhex("0a04" + "5a02" + "0863"), EncodingError),  # contract type 99
        (bytes.fromhex("0a02" + "4a00"), EncodingError),  # auths: kept as unknown by java
    ],
)
def test_malformed_or_unsupported_bytes_are_refused(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_transaction(data)


# --- resource rules -------------------------------------------------------------------------


def test_energy_limit_follows_the_network_weight() -> None:
    params = NetworkParams(other_energy_weight=19_000_000_000 - 10_000)
    ledger = Ledger(staked_energy=10_000 * TRX)
    account = Account(
        balance=0, create_time=0, frozen_energy=6_000 * TRX, acquired_energy=4_000 * TRX
    )
    # 10,000 TRX of 19e9 weight at 180e9 a day: 94,736 energy (funds-out.md §1.4).
    assert energy_limit(account, ledger, params) == 94_736


def test_usage_recovers_linearly_over_a_day() -> None:
    assert recovered(64_000, 0, 0) == 64_000
    assert recovered(64_000, 0, WINDOW_MS // 4) == 48_000
    assert recovered(64_000, 0, WINDOW_MS) == 0
    account = Account(
        balance=0, create_time=0, energy_used=1_000, latest_consume_time_for_energy=10
    )
    assert energy_used(account, 10 + WINDOW_MS // 2) == 500


def _call(kind: str, amount: int, resource: str = "ENERGY") -> Call:
    return Call(kind, OWNER, RECEIVER, amount, b"", 0, resource)


def test_undelegating_moves_the_receivers_usage_back() -> None:
    executor = Executor({})
    ledger = Ledger(
        {
            OWNER: Account(balance=100_000 * TRX, create_time=0),
            RECEIVER: Account(balance=0, create_time=0),
        }
    )
    freeze = Call("FreezeBalanceV2Contract", OWNER, OWNER, 20_000 * TRX, b"", 0, "ENERGY")
    executor.execute(ledger, freeze, 280, 1_000)
    executor.execute(ledger, _call("DelegateResourceContract", 20_000 * TRX), 280, 2_000)
    receiver = ledger.accounts[RECEIVER]
    receiver.energy_used, receiver.latest_consume_time_for_energy = 60_000, 3_000
    # Half the stake back: half the usage goes with it.
    executor.execute(ledger, _call("UnDelegateResourceContract", 10_000 * TRX), 280, 3_000)
    owner = ledger.accounts[OWNER]
    assert (receiver.energy_used, owner.energy_used) == (30_000, 30_000)
    assert (owner.frozen_energy, owner.delegated_energy) == (10_000 * TRX, 10_000 * TRX)
    assert receiver.acquired_energy == 10_000 * TRX
    assert ledger.staked_energy == 20_000 * TRX  # delegation does not change the weight


def test_bandwidth_comes_from_one_source() -> None:
    executor = Executor({})
    ledger = Ledger(
        {
            OWNER: Account(
                balance=10 * TRX, create_time=0, free_net_used=400, latest_consume_free_time=0
            ),
            RECEIVER: Account(balance=0, create_time=0),
        }
    )
    # 400 of 600 free bytes used: 265 bytes do not fit, so all of them burn.
    receipt = executor.execute(ledger, Call("TransferContract", OWNER, RECEIVER, 1, b"", 0), 265, 0)
    assert (receipt.net_usage, receipt.net_fee) == (0, 265_000)
    receipt = executor.execute(ledger, Call("TransferContract", OWNER, RECEIVER, 1, b"", 0), 200, 0)
    assert (receipt.net_usage, receipt.net_fee) == (200, 0)
