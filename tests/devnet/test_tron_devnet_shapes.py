"""The Tron devnet answers in the shapes of a real java-tron node: each response is held
key by key and value format by value format against the captures in tron_shapes/
(chains.md §3.3), and the fee numbers of a USDT transfer to an empty address match the
captured ones exactly (130,285 energy, 345 bytes, 13.3735 TRX).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from devnet.tron import TronDevnet
from devnet.tron.encoding import sign_txid, to_hex41
from devnet.tron.node import DevnetNode
from tests.fixtures.tron import TronAccount, TronApi, fresh_tron_account

SHAPES = Path(__file__).parent / "tron_shapes"
ENUM_FIELDS = {"type", "type_url", "contractRet", "result", "code", "permission_name"}
_HEX = re.compile(r"^([0-9a-f]{2})*$")


def capture(name: str) -> Any:
    return json.loads((SHAPES / name).read_text())


def value_format(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if not isinstance(value, str):
        return type(value).__name__
    if _HEX.match(value):
        if len(value) == 42 and value.startswith("41"):
            return "hex41"
        return {40: "hex20", 64: "hex32"}.get(len(value), "hex")
    if re.fullmatch(r"T[1-9A-HJ-NP-Za-km-z]{33}", value):
        return "base58"
    if value.isdigit():
        return "digits"
    return "text"


def _elided_matches(pattern: str, value: Any) -> bool:
    if pattern == "…":
        return True
    visible = "".join(pattern.split("…"))
    return (
        isinstance(value, str)
        and bool(re.fullmatch(r"[0-9a-f]*", visible))
        and (value_format(value).startswith("hex"))
    )


def assert_shape(
    actual: Any,
    expected: Any,
    path: str = "$",
    *,
    subset: bool = False,
    ignore: frozenset[str] = frozenset(),
) -> None:
    """`actual` has `expected`'s keys (all of them, or at least them with `subset`) and
    each value has the same format. `ignore` names paths (`$.a.b`, `$.list[]`) to skip."""
    if path in ignore:
        return
    if isinstance(expected, str) and "…" in expected:
        assert _elided_matches(expected, actual), f"{path}: {actual!r} is not like {expected!r}"
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: want an object, got {actual!r}"
        wanted = {k for k in expected if f"{path}.{k}" not in ignore}
        have = {k for k in actual if f"{path}.{k}" not in ignore}
        if subset:
            assert wanted <= have, f"{path}: missing keys {sorted(wanted - have)}"
        else:
            assert have == wanted, f"{path}: keys {sorted(have)} != {sorted(wanted)}"
        for key in wanted:
            assert_shape(actual[key], expected[key], f"{path}.{key}", subset=subset, ignore=ignore)
        return
    if isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: want a list, got {actual!r}"
        assert actual, f"{path}: empty list where the capture has elements"
        for item in actual:
            assert_shape(item, expected[0], f"{path}[]", subset=subset, ignore=ignore)
        return
    key = path.rsplit(".", 1)[-1]
    if key in ENUM_FIELDS and isinstance(expected, str):
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
    assert value_format(actual) == value_format(expected), (
        f"{path}: {actual!r} ({value_format(actual)}) is not like {expected!r} "
        f"({value_format(expected)})"
    )


# --- fixtures -------------------------------------------------------------------------------


def funded_account(devnet: TronDevnet, *, trx: int = 200, usdt: int = 1_000) -> TronAccount:
    account = fresh_tron_account()
    devnet.fund(
        account.address, trx_sun=trx * 10**6, tokens={"USDT": usdt * 10**6} if usdt else None
    )
    return account


# --- responses against the captures ----------------------------------------------------------


async def test_the_comparison_itself_catches_differences(tron_api: TronApi) -> None:
    expected = capture("getnowblock.json")
    block = await tron_api.call("wallet/getnowblock")
    block.pop("transactions", None)
    assert_shape(block, expected, ignore=frozenset({"$.transactions"}))
    header = block["block_header"]["raw_data"]
    with pytest.raises(AssertionError, match="keys"):
        assert_shape({**block, "block_header": {"raw_data": header}}, expected)
    base58 = {**header, "witness_address": "TV6BCWFzTBXyqQVMPizimCG21ugX9XVseB"}
    with pytest.raises(AssertionError, match="witness_address"):
        assert_shape(base58, expected["block_header"]["raw_data"], "$.raw_data")
    with pytest.raises(AssertionError, match="witness_signature"):
        assert_shape(
            {**block["block_header"], "witness_signature": "xyz"},
            expected["block_header"],
            "$.block_header",
        )
    with pytest.raises(AssertionError, match="contractRet"):
        assert_shape({"contractRet": "REVERT"}, {"contractRet": "SUCCESS"})


async def test_getnodeinfo_matches_the_capture(tron_api: TronApi, tron_devnet: TronDevnet) -> None:
    info = await tron_api.call("wallet/getnodeinfo")
    assert_shape(info, capture("getnodeinfo.json"), subset=True)  # the capture is trimmed
    head, solid = tron_devnet.status()["head"], tron_devnet.status()["solid"]
    assert abs(int(info["block"].split(",")[0][4:]) - head) <= 2
    assert abs(int(info["solidityBlock"].split(",")[0][4:]) - solid) <= 2


async def test_block_and_its_transactions_match_the_captures(
    tron_api: TronApi, paused_tron: TronDevnet
) -> None:
    sender = funded_account(paused_tron)
    sent = paused_tron.transfer(sender.private_key, fresh_tron_account().address, 1_000_000)
    block = await tron_api.call("wallet/getnowblock")
    assert block["block_header"]["raw_data"]["number"] == sent.block
    assert_shape(block, capture("getnowblock.json"), ignore=frozenset({"$.transactions[]"}))
    tx_capture = capture("gettransactionbyid.json")
    assert_shape(block["transactions"][0], tx_capture)
    by_id = await tron_api.call("wallet/gettransactionbyid", {"value": sent.txid})
    assert_shape(by_id, tx_capture)
    assert by_id == block["transactions"][0]
    by_num = await tron_api.call("wallet/getblockbynum", {"num": sent.block})
    assert by_num == block


async def test_usdt_transfer_info_matches_the_capture_down_to_the_fees(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    sender = funded_account(tron_devnet)
    # The first transfer uses the day's 600 free bytes; the second burns bandwidth, as in
    # the capture. Both pay an empty recipient: 130,285 energy.
    first = tron_devnet.transfer(sender.private_key, fresh_tron_account().address, 5_000_000)
    second = tron_devnet.transfer(sender.private_key, fresh_tron_account().address, 12_500_000)
    free = await tron_api.call("wallet/gettransactioninfobyid", {"value": first.txid})
    assert free["receipt"] == {
        "energy_fee": 13_028_500,
        "energy_usage_total": 130_285,
        "net_usage": 345,
        "result": "SUCCESS",
    }
    assert free["fee"] == 13_028_500
    info = await tron_api.call("wallet/gettransactioninfobyid", {"value": second.txid})
    expected = capture("trc20_transfer_info.json")
    # USDT-TRC20's transfer is declared `returns (bool)` and falls off its end: the
    # result is a zero word (chains.md §1.6), where the research simulator printed "".
    assert_shape(info, expected, ignore=frozenset({"$.contractResult[]"}))
    assert info["contractResult"] == ["00" * 32]
    assert info["fee"] == expected["fee"]
    assert info["receipt"] == expected["receipt"]
    assert info["log"][0]["address"] == to_hex41(tron_devnet.tokens["USDT"])[2:]
    assert info["log"][0]["topics"][1][-40:] == to_hex41(sender.address)[2:]
    assert int(info["log"][0]["data"], 16) == 12_500_000
    # The real capture of another contract's event: same fields, save the internal call
    # that contract made and its empty return value (a TRC-20 transfer returns a word).
    assert_shape(
        info,
        capture("gettransactioninfobyid_event.json"),
        ignore=frozenset({"$.internal_transactions", "$.contractResult[]"}),
    )


async def test_block_of_trx_transfers_matches_the_capture(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    sender = funded_account(tron_devnet, usdt=0)
    recipient = tron_devnet.accounts[5].base58  # exists already: no activation fee

    def four_transfers(node: DevnetNode) -> int:
        # The first two fit in the free 600 bytes a day (265 each); the others burn TRX.
        for amount in range(1_000, 1_004):
            node.send_trx(sender.private_key, recipient, amount, mine=False)
        return node.mine()[0].number

    block = tron_devnet.call(four_transfers)
    infos = await tron_api.call("wallet/gettransactioninfobyblocknum", {"num": block})
    assert len(infos) == 4
    free, burnt = infos[:2], infos[2:]
    assert all("fee" not in i and set(i["receipt"]) == {"net_usage"} for i in free)
    assert_shape(burnt, capture("gettransactioninfobyblocknum_trx.json"))
    assert all(i["fee"] == i["receipt"]["net_fee"] for i in burnt)


async def test_constant_call_matches_the_capture(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    holder = tron_devnet.accounts[0]
    answer = await tron_api.call(
        "wallet/triggerconstantcontract",
        {
            "owner_address": holder.address,
            "contract_address": to_hex41(tron_devnet.tokens["USDT"]),
            "function_selector": "balanceOf(address)",
            "parameter": "00" * 12 + holder.address[2:],
        },
    )
    expected = capture("triggerconstantcontract_balanceof.json")
    assert_shape(answer, expected)
    assert answer["energy_used"] == expected["energy_used"]
    held = tron_devnet.token_balance("USDT", holder.base58)
    assert int(answer["constant_result"][0], 16) == held


async def test_node_built_transfer_matches_the_capture(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    owner = tron_devnet.accounts[0]
    answer = await tron_api.call(
        "wallet/triggersmartcontract",
        {
            "owner_address": owner.address,
            "contract_address": to_hex41(tron_devnet.tokens["USDT"]),
            "function_selector": "transfer(address,uint256)",
            "parameter": "00" * 12 + tron_devnet.accounts[1].address[2:] + f"{100:064x}",
            "fee_limit": 100_000_000,
        },
    )
    assert_shape(answer, capture("triggersmartcontract_transfer.json"))


async def test_broadcast_answers_match_the_captures(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    owner, other = tron_devnet.accounts[6], tron_devnet.accounts[7]
    built = await tron_api.call(
        "wallet/createtransaction",
        {
            "owner_address": owner.address,
            "to_address": other.address,
            "amount": 1,
        },
    )
    tx = built
    forged = {**tx, "signature": [sign_txid(tx["txID"], other.private_key)]}
    refused = await tron_api.call("wallet/broadcasttransaction", forged)
    assert_shape(refused, capture("broadcasttransaction_error.json"))
    assert "is signed by " + other.base58 in bytes.fromhex(refused["message"]).decode()
    signed = {**tx, "signature": [sign_txid(tx["txID"], owner.private_key)]}
    accepted = await tron_api.call("wallet/broadcasttransaction", signed)
    assert_shape(accepted, capture("broadcasttransaction_ok.json"))
    assert accepted["txid"] == tx["txID"]


async def test_sign_weight_matches_the_capture(tron_api: TronApi, tron_devnet: TronDevnet) -> None:
    owner, other = tron_devnet.accounts[6], tron_devnet.accounts[7]
    built = await tron_api.call(
        "wallet/createtransaction",
        {
            "owner_address": owner.address,
            "to_address": other.address,
            "amount": 1,
        },
    )
    # The capture signs with the active permission (id 2) of a 2-of-2 account; the dev
    # accounts are 1-of-1, so one signature is enough here.
    built["raw_data"]["contract"][0]["Permission_id"] = 2
    unsigned = await tron_api.call("wallet/getsignweight", built)
    txid = unsigned["transaction"]["txid"]
    signed = {**built, "signature": [sign_txid(txid, owner.private_key)]}
    weight = await tron_api.call("wallet/getsignweight", signed)
    assert_shape(weight, capture("getsignweight.json"), ignore=frozenset({"$.result.code"}))
    assert weight["result"] == {"code": "ENOUGH_PERMISSION"}
    assert unsigned["result"] == {"code": "NOT_ENOUGH_PERMISSION"}
    assert "current_weight" not in unsigned
    assert "approved_list" not in unsigned
    assert weight["approved_list"] == [owner.address]


async def test_chain_parameters_and_energy_prices_match_the_captures(
    tron_api: TronApi,
) -> None:
    parameters = await tron_api.call("wallet/getchainparameters")
    for entry in capture("getchainparameters.json")["chainParameter"]:
        assert entry in parameters["chainParameter"]
    prices = (await tron_api.call("wallet/getenergyprices"))["prices"]
    assert re.fullmatch(r"\d+:\d+(,\d+:\d+)*", prices)
    current = capture("getenergyprices.json")["prices"].rsplit(":", 1)[-1]
    assert prices.rsplit(":", 1)[-1] == current == "100"
