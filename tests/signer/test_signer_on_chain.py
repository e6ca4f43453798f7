"""The offline signer against real nodes: requests built from node state (nonces, fees, ref
blocks), signed through the CLI as an operator would, checked with `verify_signed`, and
broadcast to anvil (Ethereum 31337, BSC 31338) and the Tron devnet.

Addresses derive from the published test mnemonic (tests/signer/support.py). Each test
uses derivation indexes of its own, and fresh treasuries, so balances are the test's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from eth_utils.address import to_checksum_address

from devnet.tron import TronDevnet
from stablegate_signer.documents import (
    SignedResponse,
    SigningRequest,
    TronTransaction,
    build_request,
    dump,
    load_response,
)
from stablegate_signer.units import format_amount
from stablegate_signer.verify import verify_signed
from tests.fixtures.anvil import AnvilChain, AnvilRpcError, fresh_address
from tests.fixtures.tron import TronApi, fresh_tron_account
from tests.signer.support import MNEMONIC, SEED

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

BIN = str(Path(sys.executable).with_name("stablegate-signer"))
TRX = 1_000_000


def _amount(base: int, decimals: int) -> dict[str, str]:
    return {"base_units": str(base), "decimal": format_amount(base, decimals)}


def sign_with_cli(workdir: Path, request: SigningRequest, policy: str) -> SignedResponse:
    """`stablegate-signer sign REQUEST -o SIGNED --policy policy.toml --seed-file F --yes`."""
    name = request.request_id
    (workdir / "policy.toml").write_text(policy, encoding="utf-8")
    seed = workdir / "seed.txt"
    if not seed.exists():
        seed.write_text(MNEMONIC + "\n")
        seed.chmod(0o600)
    (workdir / f"{name}.json").write_text(dump(request))
    result = subprocess.run(
        [
            BIN,
            "sign",
            f"{name}.json",
            "-o",
            f"{name}.signed.json",
            "--policy",
            "policy.toml",
            "--seed-file",
            "seed.txt",
            "--yes",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    signed = load_response((workdir / f"{name}.signed.json").read_text())
    verified = verify_signed(request, signed)
    assert [v.id for v in verified] == [t.id for t in request.transactions]
    return signed


# --- Ethereum and BSC -------------------------------------------------------------------------


def evm_policy(network: str, chain: AnvilChain, native: str, treasury: str) -> str:
    return f"""
[networks.{network}]
chain_id = {chain.chain_id}
path_prefixes = ["m/44'/60'/0'"]
max_fee_per_transaction = "0.01"
max_fee_per_request = "0.02"

[networks.{network}.assets]
{native} = {{ decimals = 18 }}
USDT = {{ contract = "{to_checksum_address(chain.usdt)}", decimals = {chain.decimals} }}

[networks.{network}.purposes.sweep]
destinations = ["{treasury}"]

[networks.{network}.purposes.fee_topup]
destinations = "own"
limits.{native} = {{ per_transaction = "0.01" }}
"""


async def native_balance(chain: AnvilChain, address: str, block: str = "latest") -> int:
    return int(await chain.rpc("eth_getBalance", address, block), 16)


async def nonce(chain: AnvilChain, address: str) -> int:
    return int(await chain.rpc("eth_getTransactionCount", address, "pending"), 16)


async def evm_fees(chain: AnvilChain, network: str, gas: int) -> dict[str, str]:
    if network == "bsc":
        return {"gas": str(gas), "gas_price": str(int(await chain.rpc("eth_gasPrice"), 16))}
    block = await chain.rpc("eth_getBlockByNumber", "pending", False)
    base = int(block["baseFeePerGas"], 16)
    tip = int(await chain.rpc("eth_maxPriorityFeePerGas"), 16)
    return {
        "gas": str(gas),
        "max_fee_per_gas": str(2 * base + tip),
        "max_priority_fee_per_gas": str(tip),
    }


async def test_ethereum_topup_and_sweep(anvil: AnvilChain, tmp_path: Path) -> None:
    await evm_topup_and_sweep(anvil, "ethereum", "ETH", 31337, tmp_path)


async def test_bsc_topup_and_sweep(anvil_bsc: AnvilChain, tmp_path: Path) -> None:
    await evm_topup_and_sweep(anvil_bsc, "bsc", "BNB", 31338, tmp_path)


async def evm_topup_and_sweep(
    chain: AnvilChain, network: str, native: str, index: int, tmp_path: Path
) -> None:
    """Fee top-up (fee wallet -> deposit, native) and USDT sweep (deposit -> treasury)."""
    deposit_path, fee_path = f"m/44'/60'/0'/0/{index}", f"m/44'/60'/0'/1/{index}"
    deposit = SEED.address(deposit_path, "ethereum")
    fee_wallet = SEED.address(fee_path, "ethereum")
    treasury = to_checksum_address(fresh_address())
    usdt = to_checksum_address(chain.usdt)
    amount = 1234 * 10**chain.decimals
    assert await chain.balance_of(usdt, deposit) == 0, "the deposit address is this test's"

    await chain.transfer(chain.usdt, deposit, amount)
    await chain.rpc("anvil_setBalance", fee_wallet, hex(10**18))
    assert await native_balance(chain, deposit) == 0

    sweep_data = {"from": deposit, "to": usdt, "data": "0xa9059cbb" + "00" * 12}
    sweep_data["data"] += treasury[2:].lower() + f"{amount:064x}"
    sweep_gas = int(await chain.rpc("eth_estimateGas", sweep_data), 16) * 12 // 10
    sweep_fees = await evm_fees(chain, network, sweep_gas)
    per_gas = int(sweep_fees.get("max_fee_per_gas") or sweep_fees["gas_price"])
    topup_amount = sweep_gas * per_gas  # exactly the sweep's worst-case fee
    common = {"network": network, "chain_id": str(chain.chain_id)}
    topup = (
        common
        | await evm_fees(chain, network, 21_000)
        | {
            "id": f"ot_{network}_topup",
            "purpose": "fee_topup",
            "nonce": str(await nonce(chain, fee_wallet)),
            "source": {"address": fee_wallet, "path": fee_path},
            "destination": {"address": deposit, "path": deposit_path},
            "asset": {"symbol": native, "decimals": "18", "contract": None},
            "amount": _amount(topup_amount, 18),
        }
    )
    sweep_nonce = await nonce(chain, deposit)
    sweep = (
        common
        | sweep_fees
        | {
            "id": f"ot_{network}_sweep",
            "purpose": "sweep",
            "nonce": str(sweep_nonce),
            "source": {"address": deposit, "path": deposit_path},
            "destination": {"address": treasury, "path": None},
            "asset": {"symbol": "USDT", "decimals": str(chain.decimals), "contract": usdt},
            "amount": _amount(amount, chain.decimals),
        }
    )
    signing_request = build_request(f"sr_{network}_it", [topup, sweep])
    policy = evm_policy(network, chain, native, treasury)
    signed = sign_with_cli(tmp_path, signing_request, policy)
    fee_before = await native_balance(chain, fee_wallet)

    receipts = []
    for tx in signed.transactions:  # the top-up first: the sweep needs its coin
        assert await chain.rpc("eth_sendRawTransaction", tx.signed_hex) == tx.tx_hash
        receipt = await chain.receipt(tx.tx_hash)
        assert receipt["status"] == "0x1", receipt
        receipts.append(receipt)
    topup_receipt, sweep_receipt = receipts
    assert sweep_receipt["from"] == deposit.lower()
    assert sweep_receipt["to"] == usdt.lower()

    assert await chain.balance_of(usdt, treasury) == amount
    assert await chain.balance_of(usdt, deposit) == 0
    sweep_cost = int(sweep_receipt["gasUsed"], 16) * int(sweep_receipt["effectiveGasPrice"], 16)
    topup_cost = int(topup_receipt["gasUsed"], 16) * int(topup_receipt["effectiveGasPrice"], 16)
    assert int(topup_receipt["gasUsed"], 16) == 21_000
    left = await native_balance(chain, deposit)
    assert topup_amount - left == sweep_cost  # the deposit's coin paid exactly the gas
    assert left < topup_amount
    assert await native_balance(chain, fee_wallet) == fee_before - topup_amount - topup_cost

    # Re-broadcasting the same bytes is the only retry, and it moves nothing.
    block = await chain.block_number()
    for tx in signed.transactions:
        with pytest.raises(AnvilRpcError) as refused:
            await chain.rpc("eth_sendRawTransaction", tx.signed_hex)
        message = str(refused.value).lower()
        assert "nonce too low" in message or "already known" in message, message
    await chain.mine()
    assert await chain.block_number() == block + 1
    assert await chain.balance_of(usdt, treasury) == amount
    assert await native_balance(chain, deposit) == left
    assert await nonce(chain, deposit) == sweep_nonce + 1


# --- Tron -------------------------------------------------------------------------------------


def tron_policy(usdt: str, treasury: str) -> str:
    return f"""
[networks.tron]
path_prefixes = ["m/44'/195'/0'"]
max_fee_per_transaction = "40"
max_fee_per_request = "100"

[networks.tron.assets]
TRX = {{ decimals = 6 }}
USDT = {{ contract = "{usdt}", decimals = 6 }}

[networks.tron.purposes.sweep]
destinations = ["{treasury}"]

[networks.tron.purposes.fee_topup]
destinations = "own"
limits.TRX = {{ per_transaction = "30" }}

[networks.tron.purposes.stake]
destinations = "none"
limits.TRX = {{ per_day = "100000" }}

[networks.tron.purposes.resource_delegation]
destinations = "own"
max_lock_period = 100

[networks.tron.purposes.resource_undelegation]
destinations = "own"
"""


async def ref_block(api: TronApi) -> dict[str, str]:
    """TAPOS fields from the devnet's head block, and an expiration a minute on."""
    head = await api.call("wallet/getnowblock")
    block_id: str = head["blockID"]
    now = int(time.time() * 1000)
    return {
        "ref_block_bytes": block_id[12:16],
        "ref_block_hash": block_id[16:32],
        "timestamp": str(now),
        "expiration": str(now + 60_000),
    }


async def tx_info(api: TronApi, txid: str) -> dict[str, Any]:
    found: dict[str, Any] = await api.call("wallet/gettransactioninfobyid", {"value": txid})
    assert found, f"{txid} is not in a block"
    return found


async def test_tron_stake_delegate_sweep_undelegate(
    tron_api: TronApi, paused_tron: TronDevnet, tmp_path: Path
) -> None:
    devnet = paused_tron
    index = 195
    deposit_path, fee_path = f"m/44'/195'/0'/0/{index}", f"m/44'/195'/0'/1/{index}"
    deposit = SEED.address(deposit_path, "tron")
    fee_wallet = SEED.address(fee_path, "tron")
    treasury = fresh_tron_account().address
    usdt = devnet.tokens["USDT"]
    amount = 5_000_000
    stake_trx, topup_sun = 20_000, 2 * TRX
    policy = tron_policy(usdt, treasury)

    devnet.fund(deposit, tokens={"USDT": amount})
    devnet.fund(fee_wallet, trx_sun=30_000 * TRX)
    assert await tron_api.call("wallet/getaccount", {"address": deposit, "visible": True}) == {}
    assert devnet.trx_balance(fee_wallet) == 30_000 * TRX

    def tx(purpose: str, contract_type: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": f"ot_tron_{purpose}",
            "purpose": purpose,
            "network": "tron",
            "contract_type": contract_type,
            "source": {"address": fee_wallet, "path": fee_path},
            "destination": {"address": deposit, "path": deposit_path},
            "asset": {"symbol": "TRX", "decimals": "6", "contract": None},
            "amount": _amount(stake_trx * TRX, 6),
            "resource": "ENERGY",
        } | fields

    async def sign_one(transaction: dict[str, Any]) -> tuple[SigningRequest, str]:
        full = transaction | await ref_block(tron_api)
        signing_request = build_request(f"sr_{transaction['id']}", [full])
        signed = sign_with_cli(tmp_path, signing_request, policy).transactions[0]
        assert signed.raw_data_hex is not None
        return signing_request, signed.signed_hex

    async def broadcast_hex(transaction: dict[str, Any]) -> str:
        signing_request, signed_hex = await sign_one(transaction)
        answer = await tron_api.call("wallet/broadcasthex", {"transaction": signed_hex})
        signed = load_response(
            (tmp_path / f"{signing_request.request_id}.signed.json").read_text()
        ).transactions[0]
        assert answer.get("result") is True, answer
        assert answer["txid"] == signed.tx_hash  # the devnet hashes the bytes as the signer
        devnet.mine()
        included = await tron_api.call("wallet/gettransactionbyid", {"value": signed.tx_hash})
        assert included["txID"] == signed.tx_hash
        assert included["raw_data_hex"] == signed.raw_data_hex
        assert included["ret"] == [{"contractRet": "SUCCESS"}], included
        return signed.tx_hash

    # 1. The fee wallet stakes for ENERGY (FreezeBalanceV2, field 2 frozen_balance, 3 resource).
    stake_id = await broadcast_hex(tx("stake", "FreezeBalanceV2Contract", destination=None))
    staked = await tron_api.call("wallet/getaccount", {"address": fee_wallet, "visible": True})
    assert {"type": "ENERGY", "amount": stake_trx * TRX} in staked["frozenV2"]
    assert staked["balance"] == 10_000 * TRX  # the stake's bytes came from free bandwidth
    held = await tron_api.call(
        "wallet/getaccountresource", {"address": fee_wallet, "visible": True}
    )
    energy = stake_trx * held["TotalEnergyLimit"] // held["TotalEnergyWeight"]
    assert held["EnergyLimit"] == energy > 130_285
    assert (await tx_info(tron_api, stake_id)).get("fee") is None

    # 2. TRX top-up: activates the deposit (1 TRX creation + 0.1 TRX bandwidth burnt).
    topup_id = await broadcast_hex(
        tx("fee_topup", "TransferContract", amount=_amount(topup_sun, 6), resource=None)
    )
    assert (await tx_info(tron_api, topup_id))["fee"] == 1_100_000
    assert devnet.trx_balance(deposit) == topup_sun
    assert devnet.trx_balance(fee_wallet) == 10_000 * TRX - topup_sun - 1_100_000

    # 3. Delegate the staked energy to the deposit.
    await broadcast_hex(
        tx("resource_delegation", "DelegateResourceContract", lock=False, lock_period="0")
    )
    record = await tron_api.call(
        "wallet/getdelegatedresourcev2",
        {"fromAddress": fee_wallet, "toAddress": deposit, "visible": True},
    )
    assert record == {
        "delegatedResource": [
            {"from": fee_wallet, "to": deposit, "frozen_balance_for_energy": stake_trx * TRX}
        ]
    }
    received = await tron_api.call(
        "wallet/getaccountresource", {"address": deposit, "visible": True}
    )
    assert received["EnergyLimit"] == energy

    # 4. The TRC-20 sweep, signed by the deposit's key, paid by delegated energy.
    sweep_id = await broadcast_hex(
        tx(
            "sweep",
            "TriggerSmartContract",
            source={"address": deposit, "path": deposit_path},
            destination={"address": treasury, "path": None},
            asset={"symbol": "USDT", "decimals": "6", "contract": usdt},
            amount=_amount(amount, 6),
            fee_limit=str(30 * TRX),
            resource=None,
        )
    )
    swept = await tx_info(tron_api, sweep_id)
    assert "fee" not in swept, swept  # nothing burnt
    assert swept["receipt"]["energy_usage"] == 130_285  # to an empty address
    assert swept["receipt"]["energy_usage_total"] == 130_285
    assert "energy_fee" not in swept["receipt"]
    assert swept["receipt"]["result"] == "SUCCESS"
    assert devnet.token_balance("USDT", treasury) == amount
    assert devnet.token_balance("USDT", deposit) == 0
    assert devnet.trx_balance(deposit) == topup_sun  # its bandwidth was free

    # 5. Undelegate, broadcast as JSON (raw_data + signature): the devnet re-encodes the
    # raw_data it is given and must arrive at the txID the signer signed.
    undelegate = tx("resource_undelegation", "UnDelegateResourceContract")
    signing_request, _ = await sign_one(undelegate)
    signed = load_response(
        (tmp_path / f"{signing_request.request_id}.signed.json").read_text()
    ).transactions[0]
    request_tx = signing_request.transactions[0]
    assert isinstance(request_tx, TronTransaction)
    body = {
        "visible": True,
        "txID": signed.tx_hash,
        "raw_data": {
            "contract": [
                {
                    "parameter": {
                        "value": {
                            "owner_address": fee_wallet,
                            "resource": "ENERGY",
                            "balance": stake_trx * TRX,
                            "receiver_address": deposit,
                        },
                        "type_url": "type.googleapis.com/protocol.UnDelegateResourceContract",
                    },
                    "type": "UnDelegateResourceContract",
                }
            ],
            "ref_block_bytes": request_tx.ref_block_bytes,
            "ref_block_hash": request_tx.ref_block_hash,
            "expiration": request_tx.expiration,
            "timestamp": request_tx.timestamp,
        },
        "raw_data_hex": signed.raw_data_hex,
        "signature": [signed.signature],
    }
    answer = await tron_api.call("wallet/broadcasttransaction", body)
    assert answer == {"result": True, "code": "SUCCESS", "txid": signed.tx_hash}
    devnet.mine()
    included = await tron_api.call("wallet/gettransactionbyid", {"value": signed.tx_hash})
    assert included["ret"] == [{"contractRet": "SUCCESS"}]
    assert included["raw_data_hex"] == signed.raw_data_hex
    record = await tron_api.call(
        "wallet/getdelegatedresourcev2",
        {"fromAddress": fee_wallet, "toAddress": deposit, "visible": True},
    )
    assert record == {}
    back = await tron_api.call(
        "wallet/getaccountresource", {"address": fee_wallet, "visible": True}
    )
    assert back["EnergyLimit"] == energy


async def test_tron_locked_delegation_and_bandwidth_stake(
    tron_api: TronApi, paused_tron: TronDevnet, tmp_path: Path
) -> None:
    """The fields the first test leaves at their defaults (and so out of the bytes):
    BANDWIDTH is resource 0; lock = 5 and lock_period = 6 of DelegateResourceContract."""
    devnet = paused_tron
    owner_path, receiver_path = "m/44'/195'/0'/1/196", "m/44'/195'/0'/0/196"
    owner = SEED.address(owner_path, "tron")
    receiver = SEED.address(receiver_path, "tron")
    usdt = devnet.tokens["USDT"]
    policy = tron_policy(usdt, fresh_tron_account().address)
    devnet.fund(owner, trx_sun=1_000 * TRX)
    devnet.fund(receiver, trx_sun=TRX)

    def tx(purpose: str, contract_type: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": f"ot_tron_{purpose}",
            "purpose": purpose,
            "network": "tron",
            "contract_type": contract_type,
            "source": {"address": owner, "path": owner_path},
            "destination": {"address": receiver, "path": receiver_path},
            "asset": {"symbol": "TRX", "decimals": "6", "contract": None},
            "amount": _amount(100 * TRX, 6),
        } | fields

    async def send(transaction: dict[str, Any]) -> str:
        signing_request = build_request(
            f"sr_{transaction['id']}_lock", [transaction | await ref_block(tron_api)]
        )
        signed = sign_with_cli(tmp_path, signing_request, policy).transactions[0]
        answer = await tron_api.call("wallet/broadcasthex", {"transaction": signed.signed_hex})
        assert (answer.get("result"), answer.get("code")) == (True, "SUCCESS"), answer
        assert answer["txid"] == signed.tx_hash
        devnet.mine()
        included = await tron_api.call("wallet/gettransactionbyid", {"value": signed.tx_hash})
        assert included["ret"] == [{"contractRet": "SUCCESS"}], included
        value: dict[str, Any] = included["raw_data"]["contract"][0]["parameter"]["value"]
        return json.dumps(value, sort_keys=True)

    for resource in ("BANDWIDTH", "ENERGY"):
        decoded = await send(
            tx("stake", "FreezeBalanceV2Contract", destination=None, resource=resource)
        )
        assert json.loads(decoded).get("resource", "BANDWIDTH") == resource
    frozen = await tron_api.call("wallet/getaccount", {"address": owner, "visible": True})
    assert {"type": "ENERGY", "amount": 100 * TRX} in frozen["frozenV2"]
    assert {"amount": 100 * TRX} in frozen["frozenV2"]  # BANDWIDTH: the default, no "type"

    head = await tron_api.call("wallet/getnowblock")
    head_number = head["block_header"]["raw_data"]["number"]
    await send(
        tx(
            "resource_delegation",
            "DelegateResourceContract",
            resource="ENERGY",
            lock=True,
            lock_period="100",
        )
    )
    record = await tron_api.call(
        "wallet/getdelegatedresourcev2",
        {"fromAddress": owner, "toAddress": receiver, "visible": True},
    )
    (locked,) = record["delegatedResource"]
    assert locked["frozen_balance_for_energy"] == 100 * TRX
    # lock_period = 100 blocks of 3 s from the block that included it (the head now): the
    # devnet read field 6, not its 86,400-block default.
    included = await tron_api.call("wallet/getnowblock")
    assert included["block_header"]["raw_data"]["number"] == head_number + 1
    block_time = included["block_header"]["raw_data"]["timestamp"]
    assert locked["expire_time_for_energy"] == block_time + 100 * 3_000

    # Still locked: the undelegation is refused at broadcast (nothing unlocked to take back).
    undo = tx("resource_undelegation", "UnDelegateResourceContract", resource="ENERGY")
    signing_request = build_request("sr_undo_locked", [undo | await ref_block(tron_api)])
    signed = sign_with_cli(tmp_path, signing_request, policy).transactions[0]
    answer = await tron_api.call("wallet/broadcasthex", {"transaction": signed.signed_hex})
    assert answer.get("result") is not True, answer
    assert answer["code"] == "CONTRACT_VALIDATE_ERROR", answer
    assert "unlock_balance=0" in answer["message"], answer


async def test_tron_stake_contracts_match_the_devnet_builders(
    tron_api: TronApi, tron_devnet: TronDevnet
) -> None:
    """The signer's Stake 2.0 contract bytes equal the devnet builders' for every field set."""
    from stablegate_signer import tron_proto
    from stablegate_signer.addresses import tron_address_bytes

    owner_account = fresh_tron_account()
    owner, receiver = owner_account.address, fresh_tron_account().address
    tron_devnet.fund(owner, trx_sun=5_000 * TRX)
    tron_devnet.fund(receiver, trx_sun=TRX)
    o, r = tron_address_bytes(owner), tron_address_bytes(receiver)
    for resource in ("BANDWIDTH", "ENERGY"):
        built = await tron_api.call(
            "wallet/freezebalancev2",
            {"owner_address": owner, "frozen_balance": 1_000 * TRX, "resource": resource,
             "visible": True},
        )  # fmt: skip
        mine = tron_proto.freeze_balance_v2_contract(o, 1_000 * TRX, resource).encode()
        assert mine.hex() in built["raw_data_hex"], (resource, built)
    tron_devnet.stake(owner_account.private_key, 2_000 * TRX, "ENERGY")
    tron_devnet.stake(owner_account.private_key, 2_000 * TRX, "BANDWIDTH")
    for resource in ("BANDWIDTH", "ENERGY"):
        for lock, period in ((False, 0), (True, 0), (True, 1234)):
            body: dict[str, Any] = {
                "owner_address": owner,
                "receiver_address": receiver,
                "balance": 10 * TRX,
                "resource": resource,
                "visible": True,
            }
            if lock:
                body |= {"lock": True, "lock_period": period}
            built = await tron_api.call("wallet/delegateresource", body)
            mine = tron_proto.delegate_resource_contract(
                o, r, 10 * TRX, resource, lock, period
            ).encode()
            assert mine.hex() in built["raw_data_hex"], (resource, lock, period, built)
