"""The Tron devnet over HTTP, driven by tronpy as the watcher and a sweeper would drive a
real node: TRC-20 transfers that land and ones that fail on chain, the broadcast checks,
the solidity view, forks above the solid block, java-tron's quirks, and the controls that
simulate a node in trouble.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from tronpy import AsyncTron
from tronpy.exceptions import (
    BadSignature,
    TaposError,
    TransactionError,
    UnknownError,
    ValidationError,
)
from tronpy.keys import PrivateKey

from devnet.tron import TronDevnet
from devnet.tron.encoding import to_hex41
from tests.fixtures.tron import TronAccount, TronApi, fresh_tron_account, tron_client


@pytest_asyncio.fixture
async def tron(tron_devnet: TronDevnet) -> AsyncIterator[AsyncTron]:
    async with tron_client(tron_devnet) as client:
        yield client


def payer(devnet: TronDevnet, usdt: int = 100_000_000) -> TronAccount:
    account = fresh_tron_account()
    devnet.fund(account.address, trx_sun=200_000_000, tokens={"USDT": usdt})
    return account


async def send_usdt(
    tron: AsyncTron,
    devnet: TronDevnet,
    sender: TronAccount,
    to: str,
    amount: int,
    fee_limit: int = 30_000_000,
) -> Any:
    usdt = await tron.get_contract(devnet.tokens["USDT"])
    builder = await usdt.functions.transfer(to, amount)
    tx = await builder.with_owner(sender.address).fee_limit(fee_limit).build()
    return await tx.sign(sender.key).broadcast()


# --- tronpy round trips ---------------------------------------------------------------------


async def test_trc20_transfer_through_tronpy(tron: AsyncTron, tron_devnet: TronDevnet) -> None:
    sender, to = payer(tron_devnet), fresh_tron_account().address
    usdt = await tron.get_contract(tron_devnet.tokens["USDT"])
    assert await usdt.functions.decimals() == 6
    assert await usdt.functions.symbol() == "USDT"
    ret = await send_usdt(tron, tron_devnet, sender, to, 12_500_000)
    info = await ret.wait(timeout=15, interval=0.2)
    assert info["id"] == ret.txid
    assert info["receipt"]["result"] == "SUCCESS"
    # USDT-TRC20 reports false on success (chains.md §1.6): trust the receipt and the log.
    assert await ret.result() is False
    assert await usdt.functions.balanceOf(to) == 12_500_000
    assert await usdt.functions.balanceOf(sender.address) == 87_500_000
    log = info["log"][0]  # tronpy asks with visible=true: log address in base58
    assert log["address"] == tron_devnet.tokens["USDT"]
    assert log["topics"][2][-40:] == to_hex41(to)[2:]
    assert int(log["data"], 16) == 12_500_000
    trx_left = tron_devnet.trx_balance(sender.address)
    assert trx_left == 200_000_000 - info["fee"]


async def test_trx_transfer_activates_the_recipient(
    tron: AsyncTron, tron_devnet: TronDevnet
) -> None:
    sender, to = tron_devnet.accounts[8], fresh_tron_account().address
    before = tron_devnet.trx_balance(sender.base58)
    tx = await tron.trx.transfer(sender.base58, to, 3_000_000).build()
    ret = await tx.sign(PrivateKey(bytes.fromhex(sender.private_key))).broadcast()
    info = await ret.wait(timeout=15, interval=0.2)
    assert info["fee"] == 1_100_000  # 1 TRX account creation + 0.1 TRX bandwidth
    assert info["receipt"] == {"net_fee": 100_000}
    assert await tron.get_account_balance(to) == 3
    assert tron_devnet.trx_balance(sender.base58) == before - 3_000_000 - 1_100_000


async def test_transfer_with_too_low_fee_limit_runs_out_of_energy(
    tron: AsyncTron, tron_devnet: TronDevnet
) -> None:
    sender, to = payer(tron_devnet), fresh_tron_account().address
    ret = await send_usdt(tron, tron_devnet, sender, to, 1_000_000, fee_limit=5_000_000)
    info = await ret.wait(timeout=15, interval=0.2)
    assert info["receipt"]["result"] == "OUT_OF_ENERGY"
    assert info["result"] == "FAILED"
    assert "log" not in info
    # The whole fee_limit burns: 50,000 energy at 100 sun.
    assert info["receipt"]["energy_fee"] == 5_000_000
    assert tron_devnet.token_balance("USDT", to) == 0
    assert tron_devnet.token_balance("USDT", sender.address) == 100_000_000


async def test_transfer_beyond_the_balance_reverts(
    tron: AsyncTron, tron_devnet: TronDevnet
) -> None:
    sender, to = payer(tron_devnet, usdt=1_000_000), fresh_tron_account().address
    ret = await send_usdt(tron, tron_devnet, sender, to, 1_000_001)
    info = await ret.wait(timeout=15, interval=0.2)
    assert info["receipt"]["result"] == "REVERT"
    assert info["resMessage"] == "REVERT opcode executed"  # text, as tronpy asks visible
    assert "log" not in info
    assert tron_devnet.token_balance("USDT", to) == 0


async def test_transfer_control_makes_a_transfer_fail_on_chain(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    to = fresh_tron_account().address
    answers = []
    for fail, keep_logs in (("REVERT", False), ("OUT_OF_ENERGY", False), ("REVERT", True)):
        body = {"from": 2, "to": to, "amount": 7_000_000, "fail": fail, "keep_logs": keep_logs}
        answers.append(await tron_api.call("_devnet/transfer", body))
    infos = [
        await tron_api.call("wallet/gettransactioninfobyid", {"value": a["txid"]}) for a in answers
    ]
    assert [i["receipt"]["result"] for i in infos] == ["REVERT", "OUT_OF_ENERGY", "REVERT"]
    assert ["log" in i for i in infos] == [False, False, True]
    assert infos[2]["log"][0]["address"] == to_hex41(tron_devnet.tokens["USDT"])[2:]
    assert tron_devnet.token_balance("USDT", to) == 0


async def test_lookalike_token_moves_its_own_balances(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    to = fresh_tron_account().address
    body = {"from": 3, "to": to, "amount": 5, "token": "LOOKALIKE"}
    sent = await tron_api.call("_devnet/transfer", body)
    info = await tron_api.call("wallet/gettransactioninfobyid", {"value": sent["txid"]})
    assert info["receipt"]["result"] == "SUCCESS"
    assert info["log"][0]["address"] == to_hex41(tron_devnet.tokens["LOOKALIKE"])[2:]
    assert tron_devnet.token_balance("LOOKALIKE", to) == 5
    assert tron_devnet.token_balance("USDT", to) == 0
    contract = await tron_api.call(
        "wallet/getcontract", {"value": tron_devnet.tokens["LOOKALIKE"], "visible": True}
    )
    assert contract["name"] == "TetherToken"
    assert set(tron_devnet.assets_overlay()["networks"]["tron"]["assets"]) == {"USDT", "USDC"}


# --- broadcast checks -----------------------------------------------------------------------


async def test_broadcast_refusals(tron: AsyncTron, tron_devnet: TronDevnet) -> None:
    sender = tron_devnet.accounts[9]
    to = tron_devnet.accounts[8].base58
    key = PrivateKey(bytes.fromhex(sender.private_key))
    wrong_key = PrivateKey(bytes.fromhex(tron_devnet.accounts[8].private_key))

    tx = await tron.trx.transfer(sender.base58, to, 1).build()
    with pytest.raises(BadSignature, match="is signed by"):
        await tx.set_signature([wrong_key.sign_msg_hash(bytes.fromhex(tx.txid)).hex()]).broadcast()
    # TronWeb-style v (27/28) is accepted, as by the node.
    signature = bytearray(bytes.fromhex(key.sign_msg_hash(bytes.fromhex(tx.txid)).hex()))
    signature[64] += 27
    await tx.set_signature([signature.hex()]).broadcast()
    with pytest.raises(UnknownError, match="Dup transaction"):
        await tx.broadcast()

    stale = await tron.trx.transfer(sender.base58, to, 2).build(
        offline=True, ref_block_id="00" * 8 + "ff" * 24
    )
    stale._client = tron
    with pytest.raises(TaposError):
        await stale.sign(key).broadcast()

    expired = await tron.trx.transfer(sender.base58, to, 3).build(
        offline=True, ref_block_id=tron_devnet.block_id(tron_devnet.head())
    )
    expired._raw_data["expiration"] = expired._raw_data["timestamp"] - 60_000
    with pytest.raises(TransactionError, match="expired"):
        await tron.broadcast(_resigned(expired, key))

    too_much = await tron.trx.transfer(sender.base58, to, 10**18).build()
    with pytest.raises(ValidationError, match="balance is not sufficient"):
        await too_much.sign(key).broadcast()


def _resigned(tx: Any, key: PrivateKey) -> Any:
    from tronpy.proto import calculate_txid_from_raw_data

    tx.txid = calculate_txid_from_raw_data(tx._raw_data)
    tx._signature = [key.sign_msg_hash(bytes.fromhex(tx.txid)).hex()]
    return tx


async def test_token_transfer_from_an_account_that_only_holds_tokens_is_refused(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    holder = fresh_tron_account()
    tron_devnet.fund(holder.address, tokens={"USDT": 1_000_000})
    assert (
        await tron_api.call("wallet/getaccount", {"address": holder.address, "visible": True}) == {}
    )
    body = {"private_key": holder.private_key, "to": fresh_tron_account().address, "amount": 1}
    answer = await tron_api.http.post("_devnet/transfer", json=body)
    assert answer.status_code == 400
    assert "CONTRACT_VALIDATE_ERROR" in answer.json()["error"]
    assert "no OwnerAccount" in answer.json()["error"]


# --- solidity view and forks ----------------------------------------------------------------


async def test_solidity_view_lags_by_the_depth(tron_api: TronApi, paused_tron: TronDevnet) -> None:
    to = fresh_tron_account().address
    sent = paused_tron.transfer(0, to, 4_000_000)
    solid_info = await tron_api.call("walletsolidity/gettransactioninfobyid", {"value": sent.txid})
    assert solid_info == {}
    assert await tron_api.call("walletsolidity/getblockbynum", {"num": sent.block}) == {}
    balance_call = {
        "owner_address": to,
        "contract_address": paused_tron.tokens["USDT"],
        "visible": True,
        "function_selector": "balanceOf(address)",
        "parameter": "00" * 12 + to_hex41(to)[2:],
    }
    solid_balance = await tron_api.call("walletsolidity/triggerconstantcontract", balance_call)
    assert int(solid_balance["constant_result"][0], 16) == 0
    depth = paused_tron.status()["solidification_depth"]
    paused_tron.mine(depth - 1)
    assert await tron_api.call("walletsolidity/gettransactioninfobyid", {"value": sent.txid}) == {}
    paused_tron.mine(1)
    assert paused_tron.solid() == sent.block
    info = await tron_api.call("walletsolidity/gettransactioninfobyid", {"value": sent.txid})
    assert info["blockNumber"] == sent.block
    solid_balance = await tron_api.call("walletsolidity/triggerconstantcontract", balance_call)
    assert int(solid_balance["constant_result"][0], 16) == 4_000_000
    solid_block = await tron_api.call("walletsolidity/getnowblock")
    assert solid_block["block_header"]["raw_data"]["number"] == sent.block
    node = await tron_api.call("wallet/getnodeinfo")
    assert node["solidityBlock"] == f"Num:{sent.block},ID:{solid_block['blockID']}"


async def test_fork_replaces_unsolidified_blocks_only(
    tron_api: TronApi, paused_tron: TronDevnet
) -> None:
    to = fresh_tron_account().address
    paused_tron.mine(3)
    sent = paused_tron.transfer(0, to, 2_000_000)
    paused_tron.mine(2)
    head, solid = paused_tron.head(), paused_tron.solid()
    before = [paused_tron.block_id(n) for n in range(solid - 2, head + 1)]

    answer = await tron_api.call("_devnet/fork", {"depth": 4, "txs": "drop"})
    assert answer["status"]["head"] == head
    after = [paused_tron.block_id(n) for n in range(solid - 2, head + 1)]
    base = head - 4
    kept = base - (solid - 2) + 1
    assert after[:kept] == before[:kept]  # solid block and what lies below it
    assert all(a != b for a, b in zip(after[kept:], before[kept:], strict=True))
    assert await tron_api.call("wallet/gettransactioninfobyid", {"value": sent.txid}) == {}
    assert paused_tron.token_balance("USDT", to) == 0
    new_block = await tron_api.call("wallet/getblockbynum", {"num": base + 1})
    assert new_block["block_header"]["raw_data"]["parentHash"] == paused_tron.block_id(base)

    refused = await tron_api.http.post(
        "_devnet/fork", json={"depth": head - paused_tron.solid() + 1}
    )
    assert refused.status_code == 400
    assert "solid" in refused.json()["error"]


async def test_fork_can_keep_or_move_the_transactions(
    tron_api: TronApi, paused_tron: TronDevnet
) -> None:
    to = fresh_tron_account().address
    sent = paused_tron.transfer(0, to, 3_000_000)
    assert sent.block is not None
    paused_tron.mine(1)
    old_id = paused_tron.block_id(sent.block)
    paused_tron.fork(2, "keep")
    info = await tron_api.call("wallet/gettransactioninfobyid", {"value": sent.txid})
    assert info["blockNumber"] == sent.block
    assert paused_tron.block_id(sent.block) != old_id
    paused_tron.fork(2, "last", blocks=3)
    info = await tron_api.call("wallet/gettransactioninfobyid", {"value": sent.txid})
    assert info["blockNumber"] == sent.block + 2 == paused_tron.head()
    assert paused_tron.token_balance("USDT", to) == 3_000_000


# --- java-tron quirks -----------------------------------------------------------------------


async def test_empty_and_missing_items(tron_api: TronApi, paused_tron: TronDevnet) -> None:
    (empty,) = paused_tron.mine(1)
    block = await tron_api.call("wallet/getblockbynum", {"num": empty})
    assert "transactions" not in block
    assert await tron_api.call("wallet/gettransactioninfobyblocknum", {"num": empty}) == []
    assert await tron_api.call("wallet/gettransactioninfobyblocknum", {"num": 0}) == {}
    assert await tron_api.call("wallet/gettransactioninfobyblocknum", {"num": empty + 5}) == {}
    assert await tron_api.call("wallet/getblockbynum", {"num": empty + 5}) == {}
    missing = {"value": "ab" * 32}
    assert await tron_api.call("wallet/gettransactioninfobyid", missing) == {}
    assert await tron_api.call("wallet/gettransactionbyid", missing) == {}
    nobody = {"address": fresh_tron_account().address, "visible": True}
    assert await tron_api.call("wallet/getaccount", nobody) == {}
    limit = await tron_api.call(
        "wallet/getblockbylimitnext", {"startNum": empty - 1, "endNum": empty + 3}
    )
    assert [b["block_header"]["raw_data"]["number"] for b in limit["block"]] == [empty - 1, empty]


async def test_visible_handling(tron_api: TronApi, tron_devnet: TronDevnet) -> None:
    # getnowblock reads `visible` from the query string only; the body is ignored.
    from_body = await tron_api.call("wallet/getnowblock", {"visible": True})
    assert from_body["block_header"]["raw_data"]["witness_address"].startswith("41")
    from_query = (await tron_api.http.post("wallet/getnowblock?visible=true")).json()
    assert from_query["block_header"]["raw_data"]["witness_address"] == tron_devnet.faucet.base58
    # Elsewhere the body decides: base58 in and out, hex in and out.
    account = tron_devnet.accounts[0]
    shown = await tron_api.call("wallet/getaccount", {"address": account.base58, "visible": True})
    assert shown["address"] == account.base58
    hexed = await tron_api.call("wallet/getaccount", {"address": account.address})
    assert hexed["address"] == account.address
    mixed = await tron_api.call("wallet/getaccount", {"address": account.base58})
    assert mixed["Error"].startswith("class java.lang.IllegalArgumentException")
    get = await tron_api.http.get(
        "wallet/getaccount", params={"address": account.base58, "visible": "true"}
    )
    assert get.json()["balance"] == shown["balance"]


async def test_business_errors_are_http_200(tron_api: TronApi, tron_devnet: TronDevnet) -> None:
    bad_json = await tron_api.http.post("wallet/getaccount", content=b"{not json")
    assert bad_json.status_code == 200
    assert bad_json.json() == {"Error": "class java.lang.NullPointerException : null"}
    no_contract = await tron_api.call(
        "wallet/triggerconstantcontract",
        {
            "owner_address": tron_devnet.accounts[0].address,
            "contract_address": tron_devnet.accounts[1].address,
            "function_selector": "balanceOf(address)",
            "parameter": "00" * 32,
        },
    )
    assert no_contract["result"]["code"] == "CONTRACT_VALIDATE_ERROR"
    assert (
        await tron_api.http.post("walletsolidity/broadcasttransaction", json={})
    ).status_code == 404


# --- controls that simulate node trouble ----------------------------------------------------


async def test_fail_next_modes(tron_api: TronApi) -> None:
    path = "wallet/getnodeinfo"
    await tron_api.call("_devnet/fail_next", {"path": path, "mode": "error", "times": 2})
    for _ in range(2):
        assert "Error" in await tron_api.call(path)
    assert "block" in await tron_api.call(path)

    await tron_api.call("_devnet/fail_next", {"path": path, "mode": "busy"})
    assert "lack of computing resources" in (await tron_api.call(path))["Error"]
    await tron_api.call("_devnet/fail_next", {"path": path, "mode": "503"})
    assert (await tron_api.http.post(path, json={})).status_code == 503
    await tron_api.call("_devnet/fail_next", {"path": path, "mode": "lite"})
    assert (await tron_api.http.post(path, json={})).text.startswith("this API is closed")
    await tron_api.call("_devnet/fail_next", {"path": path, "mode": "close"})
    with pytest.raises(httpx.TransportError):
        await tron_api.http.post(path, json={})
    await tron_api.call("_devnet/fail_next", {"path": "*", "mode": "hang", "seconds": 2})
    with pytest.raises(httpx.ReadTimeout):
        await tron_api.http.post(path, json={}, timeout=0.3)
    assert "block" in await tron_api.call(path)


async def test_down_and_up(tron_api: TronApi, tron_devnet: TronDevnet) -> None:
    tron_devnet.down("503")
    assert (await tron_api.http.post("wallet/getnodeinfo", json={})).status_code == 503
    assert (await tron_api.http.post("_devnet/status")).status_code == 200  # controls still answer
    await tron_api.call("_devnet/up")
    assert "block" in await tron_api.call("wallet/getnodeinfo")

    await tron_api.call("_devnet/down", {"mode": "refuse", "seconds": 0.5})
    async with httpx.AsyncClient(base_url=tron_devnet.url, timeout=2) as fresh:
        with pytest.raises(httpx.ConnectError):
            await fresh.post("wallet/getnodeinfo", json={})
        await asyncio.sleep(1.0)
        assert (await fresh.post("wallet/getnodeinfo", json={})).status_code == 200


async def test_pause_stops_the_block_timer(tron_api: TronApi, tron_devnet: TronDevnet) -> None:
    await tron_api.call("_devnet/pause")
    try:
        head = tron_devnet.head()
        await asyncio.sleep(2.5)  # more than two block times
        assert tron_devnet.head() == head
        mined = await tron_api.call("_devnet/mine", {"count": 2})
        assert mined["blocks"] == [head + 1, head + 2]
    finally:
        await tron_api.call("_devnet/resume")
    await asyncio.sleep(2.5)
    assert tron_devnet.head() > head + 2
