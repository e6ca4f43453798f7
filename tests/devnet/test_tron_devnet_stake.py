"""What a Tron sweep needs from the devnet, driven over HTTP the way the sweeper and the
offline signer will drive java-tron: node-built transactions signed with coincurve and
broadcast as protobuf hex; account activation; Stake 2.0 (stake, delegate, undelegate,
unstake); a USDT transfer paid by delegated energy, partly by it, or by burnt TRX; the
broadcast refusals; tronpy's offline transactions accepted byte for byte.

Energy numbers are chains.md §3.5's (64,285 to a holder, 130,285 to an empty address);
energy per staked TRX is read back from `getaccountresource` and checked against
`EnergyLimit = stake * TotalEnergyLimit / TotalEnergyWeight` (funds-out.md §1.4).
"""

from __future__ import annotations

from typing import Any

from tronpy.keys import PrivateKey
from tronpy.proto import tron_pb2
from tronpy.proto.transaction import _raw_data_to_protobuf

from devnet.tron import TronDevnet
from devnet.tron.encoding import to_hex41
from tests.devnet.tron_signing import (
    account,
    build,
    info,
    resources,
    send,
    sign,
    signed_hex,
    transaction_hex,
    usdt_transfer,
)
from tests.fixtures.tron import TronAccount, TronApi, fresh_tron_account, tron_client

TRX = 1_000_000
HOLDER_ENERGY, EMPTY_ENERGY = 64_285, 130_285


def funded(devnet: TronDevnet, trx: int, usdt: int = 0) -> TronAccount:
    new = fresh_tron_account()
    devnet.fund(new.address, trx_sun=trx * TRX, tokens={"USDT": usdt} if usdt else None)
    return new


def expected_limit(stake_trx: int, answer: dict[str, Any], kind: str = "Energy") -> int:
    limit: int = answer[f"Total{kind}Limit"]
    weight: int = answer[f"Total{kind}Weight"]
    return stake_trx * limit // weight


async def stake(
    api: TronApi, devnet: TronDevnet, owner: TronAccount, trx: int, resource: str = "ENERGY"
) -> str:
    body = {"owner_address": owner.address, "frozen_balance": trx * TRX, "resource": resource}
    txid = await send(api, "wallet/freezebalancev2", body, owner.private_key)
    devnet.mine()
    return txid


async def delegate(
    api: TronApi, devnet: TronDevnet, owner: TronAccount, to: str, trx: int, *, undo: bool = False
) -> str:
    body = {
        "owner_address": owner.address,
        "receiver_address": to,
        "balance": trx * TRX,
        "resource": "ENERGY",
    }
    path = "wallet/undelegateresource" if undo else "wallet/delegateresource"
    txid = await send(api, path, body, owner.private_key)
    devnet.mine()
    return txid


async def sweep(
    api: TronApi,
    devnet: TronDevnet,
    source: TronAccount,
    to: str,
    amount: int,
    fee_limit: int = 50 * TRX,
) -> str:
    body = usdt_transfer(source.address, devnet.tokens["USDT"], to_hex41(to), amount, fee_limit)
    txid = await send(api, "wallet/triggersmartcontract", body, source.private_key)
    devnet.mine()
    return txid


# --- accounts and activation ----------------------------------------------------------------


async def test_activation_is_charged_once(tron_api: TronApi, paused_tron: TronDevnet) -> None:
    deposit = fresh_tron_account()
    paused_tron.fund(deposit.address, tokens={"USDT": 7_000_000})
    # Tokens alone create no account (funds-out.md §0).
    assert await account(tron_api, deposit.address) == {}
    assert await resources(tron_api, deposit.address) == {}
    sender = funded(paused_tron, 100)
    before = paused_tron.trx_balance(sender.address)

    body = {"owner_address": sender.address, "to_address": deposit.address, "amount": 5 * TRX}
    built = await build(tron_api, "wallet/createtransaction", body)
    signed = {**built, "signature": [sign(built["txID"], sender.private_key)]}
    answer = await tron_api.call("wallet/broadcasttransaction", signed)
    assert answer == {"result": True, "code": "SUCCESS", "txid": built["txID"]}
    paused_tron.mine()
    first = await info(tron_api, built["txID"])
    assert first["fee"] == 1_100_000  # 1 TRX to the system contract + 0.1 TRX bandwidth
    assert first["receipt"] == {"net_fee": 100_000}
    assert paused_tron.trx_balance(sender.address) == before - 5 * TRX - 1_100_000
    activated = await account(tron_api, deposit.address)
    assert activated["balance"] == 5 * TRX
    assert activated["address"] == deposit.address

    body = {"owner_address": sender.address, "to_address": deposit.address, "amount": TRX}
    again = await send(tron_api, "wallet/createtransaction", body, sender.private_key)
    paused_tron.mine()
    second = await info(tron_api, again)
    assert "fee" not in second  # paid from the sender's free bandwidth
    assert set(second["receipt"]) == {"net_usage"}
    assert paused_tron.trx_balance(sender.address) == before - 6 * TRX - 1_100_000
    assert paused_tron.trx_balance(deposit.address) == 6 * TRX


async def test_staked_bandwidth_pays_an_activation(
    tron_api: TronApi, paused_tron: TronDevnet
) -> None:
    owner = funded(paused_tron, 2_000)
    await stake(tron_api, paused_tron, owner, 1_000, "BANDWIDTH")
    held = await resources(tron_api, owner.address)
    assert held["NetLimit"] == expected_limit(1_000, held, "Net")
    before = paused_tron.trx_balance(owner.address)
    body = {
        "owner_address": owner.address,
        "to_address": fresh_tron_account().address,
        "amount": TRX,
    }
    txid = await send(tron_api, "wallet/createtransaction", body, owner.private_key)
    paused_tron.mine()
    receipt = await info(tron_api, txid)
    assert receipt["fee"] == 1_000_000  # no 0.1 TRX: staked bandwidth paid the bytes
    assert set(receipt["receipt"]) == {"net_usage"}
    assert paused_tron.trx_balance(owner.address) == before - 2 * TRX
    after = await resources(tron_api, owner.address)
    assert abs(after["NetUsed"] - receipt["receipt"]["net_usage"]) <= 1


# --- energy: delegated, partly delegated, burnt -----------------------------------------------


async def test_sweep_paid_by_delegated_energy(tron_api: TronApi, paused_tron: TronDevnet) -> None:
    fee_wallet = funded(paused_tron, 30_000)
    deposit = funded(paused_tron, 1, usdt=5_000_000)
    treasury = paused_tron.accounts[0].base58  # holds USDT: the 64,285 case

    await stake(tron_api, paused_tron, fee_wallet, 20_000)
    staked = await account(tron_api, fee_wallet.address)
    assert staked["balance"] == 10_000 * TRX  # the stake tx's bytes came from free bandwidth
    assert {"type": "ENERGY", "amount": 20_000 * TRX} in staked["frozenV2"]
    own = await resources(tron_api, fee_wallet.address)
    assert own["EnergyLimit"] == expected_limit(20_000, own) > HOLDER_ENERGY
    assert own["tronPowerLimit"] == 20_000

    await delegate(tron_api, paused_tron, fee_wallet, deposit.address, 20_000)
    record = await tron_api.call(
        "wallet/getdelegatedresourcev2",
        {"fromAddress": fee_wallet.address, "toAddress": deposit.address, "visible": True},
    )
    assert record == {
        "delegatedResource": [
            {
                "from": fee_wallet.address,
                "to": deposit.address,
                "frozen_balance_for_energy": 20_000 * TRX,
            }
        ]
    }
    index = await tron_api.call(
        "wallet/getdelegatedresourceaccountindexv2", {"value": deposit.address, "visible": True}
    )
    assert index == {"account": deposit.address, "fromAccounts": [fee_wallet.address]}
    received = await resources(tron_api, deposit.address)
    assert received["EnergyLimit"] == expected_limit(20_000, received)
    assert "EnergyLimit" not in await resources(tron_api, fee_wallet.address)
    lent = await account(tron_api, fee_wallet.address)
    assert lent["account_resource"]["delegated_frozenV2_balance_for_energy"] == 20_000 * TRX

    txid = await sweep(tron_api, paused_tron, deposit, treasury, 5_000_000)
    swept = await info(tron_api, txid)
    assert "fee" not in swept  # nothing burnt: delegated energy and free bandwidth
    assert swept["receipt"] == {
        "energy_usage": HOLDER_ENERGY,
        "energy_usage_total": HOLDER_ENERGY,
        "net_usage": 345,
        "result": "SUCCESS",
    }
    assert paused_tron.trx_balance(deposit.address) == TRX
    assert paused_tron.token_balance("USDT", deposit.address) == 0
    used = await resources(tron_api, deposit.address)
    assert abs(used["EnergyUsed"] - HOLDER_ENERGY) <= 2  # recovers linearly over 24 h

    await delegate(tron_api, paused_tron, fee_wallet, deposit.address, 20_000, undo=True)
    record = await tron_api.call(
        "wallet/getdelegatedresourcev2",
        {"fromAddress": fee_wallet.address, "toAddress": deposit.address, "visible": True},
    )
    assert record == {}
    # The receiver's usage goes back with the stake (UnDelegateResourceActuator).
    back = await resources(tron_api, fee_wallet.address)
    assert back["EnergyLimit"] == expected_limit(20_000, back)
    assert abs(back["EnergyUsed"] - HOLDER_ENERGY) <= 4
    assert "EnergyUsed" not in await resources(tron_api, deposit.address)


async def test_partly_delegated_energy_burns_the_rest(
    tron_api: TronApi, paused_tron: TronDevnet
) -> None:
    fee_wallet = funded(paused_tron, 6_000)
    deposit = funded(paused_tron, 20, usdt=1_000_000)
    await stake(tron_api, paused_tron, fee_wallet, 5_000)
    await delegate(tron_api, paused_tron, fee_wallet, deposit.address, 5_000)
    lent = (await resources(tron_api, deposit.address))["EnergyLimit"]
    assert 0 < lent < HOLDER_ENERGY
    before = paused_tron.trx_balance(deposit.address)

    txid = await sweep(tron_api, paused_tron, deposit, paused_tron.accounts[1].base58, 1_000_000)
    receipt = await info(tron_api, txid)
    burnt = (HOLDER_ENERGY - lent) * 100
    assert receipt["receipt"] == {
        "energy_usage": lent,
        "energy_fee": burnt,
        "energy_usage_total": HOLDER_ENERGY,
        "net_usage": 345,
        "result": "SUCCESS",
    }
    assert receipt["fee"] == burnt
    assert paused_tron.trx_balance(deposit.address) == before - burnt


async def test_energy_burns_at_the_price_the_test_sets(
    tron_api: TronApi, paused_tron: TronDevnet
) -> None:
    deposit = funded(paused_tron, 40, usdt=1_000_000)
    paused_tron.set_prices(energy=210, bandwidth=2_000)
    try:
        prices = (await tron_api.call("wallet/getenergyprices"))["prices"]
        assert prices.startswith("0:100,")
        assert prices.endswith(":210")
        bandwidth = (await tron_api.call("wallet/getbandwidthprices"))["prices"]
        assert bandwidth.startswith("0:1000,")
        assert bandwidth.endswith(":2000")
        parameters = (await tron_api.call("wallet/getchainparameters"))["chainParameter"]
        assert {"key": "getEnergyFee", "value": 210} in parameters
        txid = await sweep(tron_api, paused_tron, deposit, fresh_tron_account().address, 10)
        receipt = await info(tron_api, txid)
        assert receipt["receipt"]["energy_fee"] == EMPTY_ENERGY * 210
        assert "energy_usage" not in receipt["receipt"]
    finally:
        paused_tron.set_prices(energy=100, bandwidth=1_000)
    assert (await tron_api.call("wallet/getenergyprices"))["prices"].endswith(":100")


async def test_out_of_energy_burns_what_it_used(tron_api: TronApi, paused_tron: TronDevnet) -> None:
    poor = funded(paused_tron, 3, usdt=2_000_000)
    txid = await sweep(
        tron_api, paused_tron, poor, paused_tron.accounts[1].base58, 2_000_000, fee_limit=100 * TRX
    )
    receipt = await info(tron_api, txid)
    assert receipt["receipt"] == {
        "energy_fee": 3 * TRX,  # all the TRX it had: 30,000 energy at 100 sun
        "energy_usage_total": 30_000,
        "net_usage": 345,
        "result": "OUT_OF_ENERGY",
    }
    assert receipt["result"] == "FAILED"
    assert paused_tron.trx_balance(poor.address) == 0
    assert paused_tron.token_balance("USDT", poor.address) == 2_000_000
    assert "balance" not in await account(tron_api, poor.address)


async def test_energy_estimates_match_what_transfers_use(
    tron_api: TronApi, paused_tron: TronDevnet
) -> None:
    deposit = funded(paused_tron, 40, usdt=3_000_000)
    for to, energy in (
        (paused_tron.accounts[2].base58, HOLDER_ENERGY),
        (fresh_tron_account().address, EMPTY_ENERGY),
    ):
        body = usdt_transfer(deposit.address, paused_tron.tokens["USDT"], to_hex41(to), 1, 0)
        del body["fee_limit"]
        estimate = await tron_api.call("wallet/estimateenergy", {**body, "visible": True})
        assert estimate == {"result": {"result": True}, "energy_required": energy}
        constant = await tron_api.call("wallet/triggerconstantcontract", {**body, "visible": True})
        assert constant["energy_used"] == energy
        txid = await sweep(tron_api, paused_tron, deposit, to, 1)
        assert (await info(tron_api, txid))["receipt"]["energy_usage_total"] == energy


# --- unstaking ------------------------------------------------------------------------------


async def test_unstake_waits_14_days(tron_api: TronApi, paused_tron: TronDevnet) -> None:
    owner = funded(paused_tron, 200)
    await stake(tron_api, paused_tron, owner, 100, "BANDWIDTH")
    weight = (await resources(tron_api, owner.address))["TotalNetWeight"]
    body = {"owner_address": owner.address, "unfreeze_balance": 40 * TRX}
    txid = await send(tron_api, "wallet/unfreezebalancev2", body, owner.private_key)
    block = paused_tron.mine()[0]
    assert "fee" not in await info(tron_api, txid)
    held = await account(tron_api, owner.address)
    assert held["balance"] == 100 * TRX  # unstaked TRX is not spendable yet
    assert held["frozenV2"][0] == {"amount": 60 * TRX}
    timestamp = (await tron_api.call("wallet/getblockbynum", {"num": block}))["block_header"][
        "raw_data"
    ]["timestamp"]
    assert held["unfrozenV2"] == [
        {"unfreeze_amount": 40 * TRX, "unfreeze_expire_time": timestamp + 14 * 86_400_000}
    ]
    assert (await resources(tron_api, owner.address))["TotalNetWeight"] == weight - 40


# --- refusals -------------------------------------------------------------------------------


ERROR = "class org.tron.core.exception.ContractValidateException : "


async def test_builders_refuse_with_java_tron_messages(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    owner = funded(tron_devnet, 50)
    token_only = fresh_tron_account()
    tron_devnet.fund(token_only.address, tokens={"USDT": 1})

    async def error(path: str, body: dict[str, Any]) -> str:
        answer = await tron_api.call(path, {**body, "visible": True})
        assert set(answer) == {"Error"}, answer
        text: str = answer["Error"]
        assert text.startswith(ERROR)
        return text.removeprefix(ERROR)

    freeze = {"owner_address": owner.address, "resource": "ENERGY"}
    assert await error("wallet/freezebalancev2", {**freeze, "frozen_balance": TRX // 2}) == (
        "frozenBalance must be greater than or equal to 1 TRX"
    )
    assert await error("wallet/freezebalancev2", {**freeze, "frozen_balance": 51 * TRX}) == (
        "frozenBalance must be less than or equal to accountBalance"
    )
    assert await error("wallet/unfreezebalancev2", {**freeze, "unfreeze_balance": TRX}) == (
        "no frozenBalance(Energy)"
    )
    lend = {"owner_address": owner.address, "resource": "ENERGY", "balance": TRX}
    to_new = {**lend, "receiver_address": token_only.address}
    assert await error("wallet/delegateresource", to_new) == (
        "delegateBalance must be less than or equal to available FreezeEnergyV2 balance"
    )
    await stake(tron_api, tron_devnet, owner, 10)
    assert await error("wallet/delegateresource", to_new) == (
        f"Account[{to_hex41(token_only.address)}] not exists"
    )
    to_self = {**lend, "receiver_address": owner.address}
    assert await error("wallet/delegateresource", to_self) == (
        "receiverAddress must not be the same as ownerAddress"
    )
    to_contract = {**lend, "receiver_address": tron_devnet.tokens["USDT"]}
    assert await error("wallet/delegateresource", to_contract) == (
        "Do not allow delegate resources to contract addresses"
    )
    to_other = {**lend, "receiver_address": tron_devnet.accounts[3].base58}
    assert await error("wallet/undelegateresource", to_other) == (
        "delegated Resource does not exist"
    )
    await delegate(tron_api, tron_devnet, owner, tron_devnet.accounts[3].base58, 2)
    assert await error("wallet/undelegateresource", {**to_other, "balance": 3 * TRX}) == (
        "insufficient delegateFrozenBalance(Energy), request=3000000, unlock_balance=2000000"
    )
    unknown = fresh_tron_account().address
    assert await error(
        "wallet/freezebalancev2", {**freeze, "owner_address": unknown, "frozen_balance": TRX}
    ) == (f"Account[{to_hex41(unknown)}] not exists")


async def test_broadcast_refusals_on_signed_bytes(
    tron_api: TronApi, paused_tron: TronDevnet
) -> None:
    sender, other = funded(paused_tron, 20), fresh_tron_account()
    to = paused_tron.accounts[4].base58
    body = {"owner_address": sender.address, "to_address": to, "amount": 3 * TRX}
    built = await build(tron_api, "wallet/createtransaction", body)

    forged = transaction_hex(built["raw_data_hex"], [sign(built["txID"], other.private_key)])
    refused = await tron_api.call("wallet/broadcasthex", {"transaction": forged})
    assert refused["result"] is False
    assert refused["code"] == "SIGERROR"
    assert f"is signed by {other.address}" in refused["message"]
    assert refused["txid"] == built["txID"]

    good = signed_hex(built, sender.private_key)
    before = paused_tron.trx_balance(to)
    accepted = await tron_api.call("wallet/broadcasthex", {"transaction": good})
    assert accepted["result"] is True
    assert accepted["message"] == ""
    pooled_again = await tron_api.call("wallet/broadcasthex", {"transaction": good})
    assert pooled_again["code"] == "DUP_TRANSACTION_ERROR"
    paused_tron.mine()
    included_again = await tron_api.call("wallet/broadcasthex", {"transaction": good})
    assert included_again["code"] == "DUP_TRANSACTION_ERROR"
    assert included_again["message"] == "Dup transaction"
    paused_tron.mine()
    assert paused_tron.trx_balance(to) == before + 3 * TRX  # applied once

    # Valid when built (17 TRX left), no longer once 10 TRX went out.
    poor = await build(tron_api, "wallet/createtransaction", {**body, "amount": 15 * TRX})
    await send(
        tron_api, "wallet/createtransaction", {**body, "amount": 10 * TRX}, sender.private_key
    )
    overdrawn = await tron_api.call(
        "wallet/broadcasthex", {"transaction": signed_hex(poor, sender.private_key)}
    )
    assert overdrawn["code"] == "CONTRACT_VALIDATE_ERROR"
    assert overdrawn["message"] == "Validate TransferContract error, balance is not sufficient."


async def test_expired_and_unknown_ref_block_are_refused(
    tron_api: TronApi, paused_tron: TronDevnet
) -> None:
    sender = funded(paused_tron, 10)
    key = PrivateKey(bytes.fromhex(sender.private_key))
    head = paused_tron.block_id(paused_tron.head())
    async with tron_client(paused_tron) as tron:
        expired = await tron.trx.transfer(sender.address, paused_tron.accounts[5].base58, 1).build(
            offline=True, ref_block_id=head
        )
        stale = await tron.trx.transfer(sender.address, paused_tron.accounts[5].base58, 2).build(
            offline=True, ref_block_id="00" * 8 + "ff" * 24
        )
    expired._raw_data["expiration"] = expired._raw_data["timestamp"] - 60_000
    for tx, code in ((expired, "TRANSACTION_EXPIRATION_ERROR"), (stale, "TAPOS_ERROR")):
        answer = await tron_api.call("wallet/broadcasthex", {"transaction": _tronpy_hex(tx, key)})
        assert answer["result"] is False, answer
        assert answer["code"] == code, answer


async def test_broadcasthex_input_errors(tron_api: TronApi) -> None:
    missing = await tron_api.call("wallet/broadcasthex", {})
    assert missing["code"] == "CONTRACT_VALIDATE_ERROR"
    assert missing["message"] == "Contract validate error : No contract!"
    assert missing["transaction"] == "{}"
    not_hex = await tron_api.call("wallet/broadcasthex", {"transaction": "zz"})
    assert not_hex["Error"].startswith("class org.bouncycastle.util.encoders.DecoderException")
    truncated = await tron_api.call("wallet/broadcasthex", {"transaction": "0a05"})
    assert truncated["Error"].startswith("class com.google.protobuf.InvalidProtocolBufferException")


# --- tronpy's offline transactions ----------------------------------------------------------


def _tronpy_hex(tx: Any, key: PrivateKey) -> str:
    """tronpy's own protobuf (tron_pb2) of a transaction it built and signs here."""
    from tronpy.proto import calculate_txid_from_raw_data

    tx.txid = calculate_txid_from_raw_data(tx._raw_data)
    signature = key.sign_msg_hash(bytes.fromhex(tx.txid)).hex()
    message = tron_pb2.Transaction(
        raw_data=_raw_data_to_protobuf(tx._raw_data), signature=[bytes.fromhex(signature)]
    )
    return str(message.SerializeToString().hex())


async def test_tronpy_offline_transactions_are_accepted_as_hex(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    sender = funded(tron_devnet, 100, usdt=1_000_000)
    key = PrivateKey(bytes.fromhex(sender.private_key))
    to = fresh_tron_account().address
    solid = tron_devnet.block_id(tron_devnet.solid())
    async with tron_client(tron_devnet) as tron:
        trx = await tron.trx.transfer(sender.address, to, 2 * TRX).build(
            offline=True, ref_block_id=solid
        )
        usdt = await tron.get_contract(tron_devnet.tokens["USDT"])
        call = await usdt.functions.transfer(to, 500_000)
        trc20 = (
            await call.with_owner(sender.address)
            .fee_limit(30 * TRX)
            .build(offline=True, ref_block_id=solid)
        )
    for tx in (trx, trc20):
        answer = await tron_api.call("wallet/broadcasthex", {"transaction": _tronpy_hex(tx, key)})
        assert answer["result"] is True, answer
        assert answer["txid"] == tx.txid
    tron_devnet.mine()
    assert (await info(tron_api, trx.txid))["fee"] == 1_100_000  # activates `to`
    assert (await info(tron_api, trc20.txid))["receipt"]["energy_usage_total"] == EMPTY_ENERGY
    assert tron_devnet.token_balance("USDT", to) == 500_000
    assert tron_devnet.trx_balance(to) == 2 * TRX


# --- controls -------------------------------------------------------------------------------


async def test_stake_delegate_and_price_controls(
    tron_api: TronApi, paused_tron: TronDevnet
) -> None:
    owner, receiver = funded(paused_tron, 3_000), funded(paused_tron, 1)

    async def control(name: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await tron_api.http.post(f"_devnet/{name}", json=body)
        answer: dict[str, Any] = response.json()
        answer["http_status"] = response.status_code
        return answer

    staked = await control("stake", {"private_key": owner.private_key, "amount": 2_000 * TRX})
    assert staked["http_status"] == 200
    assert "fee" not in await info(tron_api, staked["txid"])
    lent = await control(
        "delegate",
        {"private_key": owner.private_key, "to": receiver.address, "amount": 1_500 * TRX},
    )
    assert lent["block"] == staked["block"] + 1
    energy = await resources(tron_api, receiver.address)
    assert energy["EnergyLimit"] == expected_limit(1_500, energy)
    back = await control(
        "delegate",
        {
            "private_key": owner.private_key,
            "to": receiver.address,
            "amount": 1_500 * TRX,
            "undo": True,
        },
    )
    assert back["http_status"] == 200
    assert "EnergyLimit" not in await resources(tron_api, receiver.address)
    # Through the chain's own checks: more than the stake is refused with java-tron's text.
    too_much = await control(
        "delegate",
        {"private_key": owner.private_key, "to": receiver.address, "amount": 2_001 * TRX},
    )
    assert too_much["http_status"] == 400
    assert "available FreezeEnergyV2 balance" in too_much["error"]

    assert (await control("set_prices", {"energy": 0}))["http_status"] == 400
    assert (await control("set_prices", {"bandwidth": 1_500}))["http_status"] == 200
    try:
        prices = (await tron_api.call("wallet/getbandwidthprices"))["prices"]
        assert prices.endswith(":1500")
        parameters = (await tron_api.call("wallet/getchainparameters"))["chainParameter"]
        assert {"key": "getTransactionFee", "value": 1_500} in parameters
    finally:
        paused_tron.set_prices(bandwidth=1_000)


async def test_stake_transactions_broadcast_as_json_too(
    tron_api: TronApi, paused_tron: TronDevnet
) -> None:
    owner, receiver = funded(paused_tron, 500), funded(paused_tron, 1)
    await stake(tron_api, paused_tron, owner, 100)
    for visible in (True, False):
        shown = (lambda a: a) if visible else to_hex41
        body = {
            "owner_address": shown(owner.address),
            "receiver_address": shown(receiver.address),
            "balance": 10 * TRX,
            "resource": "ENERGY",
            "visible": visible,
        }
        built = await tron_api.call("wallet/delegateresource", body)
        value = built["raw_data"]["contract"][0]["parameter"]["value"]
        assert value["receiver_address"] == shown(receiver.address)
        signed = {**built, "signature": [sign(built["txID"], owner.private_key)]}
        answer = await tron_api.call("wallet/broadcasttransaction", signed)
        assert answer == {"result": True, "code": "SUCCESS", "txid": built["txID"]}
        paused_tron.mine()
    record = await tron_api.call(
        "wallet/getdelegatedresourcev2",
        {"fromAddress": owner.address, "toAddress": receiver.address, "visible": True},
    )
    assert record["delegatedResource"][0]["frozen_balance_for_energy"] == 20 * TRX
    held = await tron_api.call("wallet/gettransactionbyid", {"value": built["txID"]})
    assert held["ret"] == [{"contractRet": "SUCCESS"}]
    assert held["raw_data"]["contract"][0]["type"] == "DelegateResourceContract"
