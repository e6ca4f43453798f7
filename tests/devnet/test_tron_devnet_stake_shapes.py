"""The devnet's Stake 2.0 builders, resource queries and broadcasthex against the
responses documentation-en prints (tron_shapes/README.md says which are real captures,
which are examples and which are structure outlines), compared key by key and value
format by value format as in test_tron_devnet_shapes.
"""

from __future__ import annotations

import json

from devnet.tron import TronDevnet
from devnet.tron.encoding import encode_raw_data, to_hex41, txid_of
from devnet.tron.transactions import normalize_raw
from tests.devnet.test_tron_devnet_shapes import assert_shape, capture
from tests.devnet.tron_signing import send, signed_hex
from tests.fixtures.tron import TronAccount, TronApi, fresh_tron_account

TRX = 1_000_000


def funded(devnet: TronDevnet, trx: int) -> TronAccount:
    new = fresh_tron_account()
    devnet.fund(new.address, trx_sun=trx * TRX)
    return new


def test_the_captured_stake_transactions_encode_byte_for_byte() -> None:
    for name in ("freezebalancev2.json", "createtransaction.json"):
        tx = capture(name)
        raw = encode_raw_data(normalize_raw(tx["raw_data"], visible=False))
        assert raw.hex() == tx["raw_data_hex"]
        assert txid_of(raw) == tx["txID"]


async def test_transfer_and_freeze_builders_match_the_captures(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    owner = funded(tron_devnet, 100)
    hex_owner = to_hex41(owner.address)
    built = await tron_api.call(
        "wallet/createtransaction",
        {"owner_address": hex_owner, "to_address": tron_devnet.accounts[1].address, "amount": 1},
    )
    assert_shape(built, capture("createtransaction.json"))
    built = await tron_api.call(
        "wallet/freezebalancev2",
        {"owner_address": hex_owner, "frozen_balance": 10 * TRX, "resource": "ENERGY"},
    )
    assert_shape(built, capture("freezebalancev2.json"))
    raw = built["raw_data"]
    assert raw["expiration"] - raw["timestamp"] <= 60_000
    bandwidth = await tron_api.call(
        "wallet/freezebalancev2", {"owner_address": hex_owner, "frozen_balance": 10 * TRX}
    )
    # BANDWIDTH is ResourceCode 0, the protobuf default: left out of the JSON.
    assert set(bandwidth["raw_data"]["contract"][0]["parameter"]["value"]) == {
        "owner_address",
        "frozen_balance",
    }


async def test_delegation_builders_match_the_documented_outlines(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    owner = funded(tron_devnet, 100)
    hex_owner, receiver = to_hex41(owner.address), tron_devnet.accounts[2].address
    stake = {"owner_address": owner.address, "frozen_balance": 20 * TRX, "resource": "ENERGY"}
    await send(tron_api, "wallet/freezebalancev2", stake, owner.private_key)
    tron_devnet.mine()
    lend = {
        "owner_address": hex_owner,
        "receiver_address": receiver,
        "balance": 10 * TRX,
        "resource": "ENERGY",
    }
    lock = frozenset({"$.raw_data.contract[].parameter.value.lock"})
    built = await tron_api.call("wallet/delegateresource", lend)
    assert_shape(built, capture("delegateresource_outline.json"), ignore=lock)
    assert "lock" not in built["raw_data"]["contract"][0]["parameter"]["value"]
    locked = await tron_api.call(
        "wallet/delegateresource", {**lend, "lock": True, "lock_period": 28_800}
    )
    value = locked["raw_data"]["contract"][0]["parameter"]["value"]
    assert value["lock"] is True
    assert value["lock_period"] == 28_800
    tx = await tron_api.call(
        "wallet/broadcasthex", {"transaction": signed_hex(built, owner.private_key)}
    )
    assert tx["result"] is True
    tron_devnet.mine()
    undo = await tron_api.call("wallet/undelegateresource", lend)
    assert_shape(undo, capture("undelegateresource_outline.json"))
    unstake = await tron_api.call(
        "wallet/unfreezebalancev2",
        {"owner_address": hex_owner, "unfreeze_balance": 5 * TRX, "resource": "ENERGY"},
    )
    assert_shape(unstake, capture("unfreezebalancev2_outline.json"))


async def test_validation_errors_match_the_captured_answers(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    owner = to_hex41(funded(tron_devnet, 10).address)
    other = tron_devnet.accounts[3].address
    lend = {
        "owner_address": owner,
        "receiver_address": other,
        "balance": TRX * 1_000,
        "resource": "ENERGY",
    }
    assert await tron_api.call("wallet/delegateresource", lend) == capture(
        "delegateresource_error.json"
    )
    assert await tron_api.call("wallet/undelegateresource", lend) == capture(
        "undelegateresource_error.json"
    )
    unstake = {"owner_address": owner, "unfreeze_balance": TRX * 1_000, "resource": "ENERGY"}
    assert await tron_api.call("wallet/unfreezebalancev2", unstake) == capture(
        "unfreezebalancev2_error.json"
    )


async def test_resource_queries_match_the_documented_examples(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    owner = funded(tron_devnet, 100)
    receiver = tron_devnet.accounts[4]
    await send(
        tron_api,
        "wallet/createtransaction",
        {"owner_address": owner.address, "to_address": receiver.base58, "amount": 1},
        owner.private_key,
    )
    tron_devnet.mine()
    used = await tron_api.call("wallet/getaccountresource", {"address": to_hex41(owner.address)})
    # The devnet has no TRC-10 tokens, so no assetNet* maps.
    no_assets = frozenset({"$.assetNetUsed", "$.assetNetLimit"})
    assert_shape(used, capture("getaccountresource.json"), ignore=no_assets)

    index = await tron_api.call(
        "wallet/getdelegatedresourceaccountindexv2", {"value": to_hex41(owner.address)}
    )
    assert_shape(index, capture("getdelegatedresourceaccountindexv2.json"))

    stake = {"owner_address": owner.address, "frozen_balance": 20 * TRX, "resource": "ENERGY"}
    await send(tron_api, "wallet/freezebalancev2", stake, owner.private_key)
    tron_devnet.mine()
    lend = {
        "owner_address": owner.address,
        "receiver_address": receiver.base58,
        "balance": 10 * TRX,
        "resource": "ENERGY",
        "lock": True,
    }
    await send(tron_api, "wallet/delegateresource", lend, owner.private_key)
    tron_devnet.mine()
    record = await tron_api.call(
        "wallet/getdelegatedresourcev2",
        {"fromAddress": to_hex41(owner.address), "toAddress": receiver.address},
    )
    assert_shape(record, capture("getdelegatedresourcev2.json"))
    # A locked delegation: 86,400 blocks of 3 s (funds-out.md §1.1).
    block = await tron_api.call("wallet/getnowblock")
    expire = record["delegatedResource"][0]["expire_time_for_energy"]
    assert expire == block["block_header"]["raw_data"]["timestamp"] + 86_400 * 3_000
    locked = await tron_api.call(
        "wallet/undelegateresource", {**lend, "visible": True, "lock": None}
    )
    assert locked["Error"].endswith("request=10000000, unlock_balance=0")
    size = await tron_api.call(
        "wallet/getcandelegatedmaxsize",
        {"owner_address": owner.address, "type": 1, "visible": True},
    )
    assert size == {"max_size": 10 * TRX}


async def test_broadcasthex_answer_matches_the_documented_example(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    owner = funded(tron_devnet, 10)
    built = await tron_api.call(
        "wallet/createtransaction",
        {
            "owner_address": owner.address,
            "to_address": tron_devnet.accounts[5].base58,
            "amount": 1,
            "visible": True,
        },
    )
    answer = await tron_api.call(
        "wallet/broadcasthex", {"transaction": signed_hex(built, owner.private_key)}
    )
    assert_shape(answer, capture("broadcasthex_ok.json"))
    printed = json.loads(answer["transaction"])  # a JSON document inside a string, visible
    assert printed["raw_data"] == built["raw_data"]
    assert len(printed["signature"]) == 1
