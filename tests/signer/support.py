"""Signer test support: the published BIP-39 test mnemonic, transaction factories, a policy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from stablegate_signer.documents import SigningRequest, build_request
from stablegate_signer.keys import Seed
from stablegate_signer.policy import Policy
from stablegate_signer.signing import Signer
from stablegate_signer.units import format_amount

MNEMONIC = "abandon " * 11 + "about"
OTHER_MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
SEED = Seed(MNEMONIC)

ETH_DEPOSIT_PATH = "m/44'/60'/0'/0/0"
ETH_FEE_PATH = "m/44'/60'/0'/1/0"
TRON_DEPOSIT_PATH = "m/44'/195'/0'/0/0"
TRON_FEE_PATH = "m/44'/195'/0'/1/0"
ETH_DEPOSIT = SEED.address(ETH_DEPOSIT_PATH, "ethereum")
ETH_DEPOSIT_2 = SEED.address("m/44'/60'/0'/0/1", "ethereum")
ETH_FEE = SEED.address(ETH_FEE_PATH, "ethereum")
TRON_DEPOSIT = SEED.address(TRON_DEPOSIT_PATH, "tron")
TRON_FEE = SEED.address(TRON_FEE_PATH, "tron")

ETH_TREASURY = "0x1111111111111111111111111111111111111111"
EVM_CUSTOMER = "0x2222222222222222222222222222222222222222"
ATTACKER = "0x000000000000000000000000000000000000dEaD"
ETH_USDT = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
BSC_USDT = "0x55d398326f99059fF775485246999027B3197955"
TRON_USDT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
TRON_TREASURY = "TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HC"
TRON_CUSTOMER = "TEkxiTehnzSmSe2XqrBj4w32RUN966rdz8"


def _amount(base: int, decimals: int) -> dict[str, str]:
    return {"base_units": str(base), "decimal": format_amount(base, decimals)}


def eth_tx(**over: Any) -> dict[str, Any]:
    """A USDT sweep on Ethereum mainnet (EIP-1559)."""
    tx: dict[str, Any] = {
        "id": "ot_eth_1",
        "purpose": "sweep",
        "network": "ethereum",
        "chain_id": "1",
        "nonce": "0",
        "gas": "65000",
        "max_fee_per_gas": "2000000000",
        "max_priority_fee_per_gas": "100000000",
        "source": {"address": ETH_DEPOSIT, "path": ETH_DEPOSIT_PATH},
        "destination": {"address": ETH_TREASURY, "path": None},
        "asset": {"symbol": "USDT", "decimals": "6", "contract": ETH_USDT},
        "amount": _amount(12_500_000, 6),
    }
    return tx | over


def eth_topup(**over: Any) -> dict[str, Any]:
    tx = eth_tx(
        id="ot_eth_topup",
        purpose="fee_topup",
        gas="21000",
        source={"address": ETH_FEE, "path": ETH_FEE_PATH},
        destination={"address": ETH_DEPOSIT, "path": ETH_DEPOSIT_PATH},
        asset={"symbol": "ETH", "decimals": "18", "contract": None},
        amount=_amount(130_000_000_000_000, 18),
    )
    return tx | over


def bsc_tx(**over: Any) -> dict[str, Any]:
    """A USDT refund on BSC (legacy EIP-155)."""
    tx: dict[str, Any] = {
        "id": "ot_bsc_1",
        "purpose": "refund",
        "network": "bsc",
        "chain_id": "56",
        "nonce": "3",
        "gas": "60000",
        "gas_price": "100000000",
        "source": {"address": ETH_DEPOSIT, "path": ETH_DEPOSIT_PATH},
        "destination": {"address": EVM_CUSTOMER, "path": None},
        "asset": {"symbol": "USDT", "decimals": "18", "contract": BSC_USDT},
        "amount": _amount(25 * 10**18, 18),
    }
    return tx | over


def _tron_times() -> dict[str, str]:
    now = int(time.time() * 1000)
    return {"timestamp": str(now), "expiration": str(now + 3_600_000)}


def tron_trc20(**over: Any) -> dict[str, Any]:
    """A USDT sweep on Tron (TriggerSmartContract transfer)."""
    tx: dict[str, Any] = {
        "id": "ot_tron_1",
        "purpose": "sweep",
        "network": "tron",
        "contract_type": "TriggerSmartContract",
        "ref_block_bytes": "4567",
        "ref_block_hash": "abcdef0123456789",
        "fee_limit": "30000000",
        "source": {"address": TRON_DEPOSIT, "path": TRON_DEPOSIT_PATH},
        "destination": {"address": TRON_TREASURY, "path": None},
        "asset": {"symbol": "USDT", "decimals": "6", "contract": TRON_USDT},
        "amount": _amount(9_000_000, 6),
    } | _tron_times()
    return tx | over


def tron_trx(**over: Any) -> dict[str, Any]:
    """A TRX top-up from the fee wallet to a deposit address (TransferContract)."""
    tx = tron_trc20(
        id="ot_tron_topup",
        purpose="fee_topup",
        contract_type="TransferContract",
        fee_limit=None,
        source={"address": TRON_FEE, "path": TRON_FEE_PATH},
        destination={"address": TRON_DEPOSIT, "path": TRON_DEPOSIT_PATH},
        asset={"symbol": "TRX", "decimals": "6", "contract": None},
        amount=_amount(1_100_000, 6),
    )
    return tx | over


def tron_resource(purpose: str, **over: Any) -> dict[str, Any]:
    contract = {
        "stake": "FreezeBalanceV2Contract",
        "resource_delegation": "DelegateResourceContract",
        "resource_undelegation": "UnDelegateResourceContract",
    }[purpose]
    tx = tron_trx(
        id=f"ot_tron_{purpose}",
        purpose=purpose,
        contract_type=contract,
        resource="ENERGY",
        amount=_amount(6_700_000_000, 6),
    )
    if purpose == "stake":
        tx["destination"] = None
    if purpose == "resource_delegation":
        tx |= {"lock": False, "lock_period": "0"}
    return tx | over


def request(*transactions: dict[str, Any], request_id: str = "sr_test_1") -> SigningRequest:
    return build_request(request_id, list(transactions))


POLICY = f"""
[networks.ethereum]
chain_id = 1
path_prefixes = ["m/44'/60'/0'"]
max_fee_per_transaction = "0.01"
max_fee_per_request = "0.05"

[networks.ethereum.assets]
ETH = {{ decimals = 18 }}
USDT = {{ contract = "{ETH_USDT}", decimals = 6 }}

[networks.ethereum.purposes.sweep]
destinations = ["{ETH_TREASURY}"]

[networks.ethereum.purposes.fee_topup]
destinations = "own"
limits.ETH = {{ per_transaction = "0.01" }}

[networks.ethereum.purposes.payout]
destinations = "any"
limits.USDT = {{ per_request = "100", per_day = "150" }}

[networks.bsc]
chain_id = 56
path_prefixes = ["m/44'/60'/0'"]
max_fee_per_transaction = "0.001"
max_fee_per_request = "0.01"

[networks.bsc.assets]
USDT = {{ contract = "{BSC_USDT}", decimals = 18 }}

[networks.bsc.purposes.refund]
destinations = "any"
limits.USDT = {{ per_transaction = "50", per_request = "100", per_day = "120" }}

[networks.tron]
path_prefixes = ["m/44'/195'/0'"]
max_fee_per_transaction = "40"
max_fee_per_request = "100"

[networks.tron.assets]
TRX = {{ decimals = 6 }}
USDT = {{ contract = "{TRON_USDT}", decimals = 6 }}

[networks.tron.purposes.sweep]
destinations = ["{TRON_TREASURY}"]

[networks.tron.purposes.fee_topup]
destinations = "own"

[networks.tron.purposes.stake]
destinations = "none"

[networks.tron.purposes.resource_delegation]
destinations = "own"

[networks.tron.purposes.resource_undelegation]
destinations = "own"
"""


def write_policy(directory: Path, text: str = POLICY) -> Path:
    path = directory / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def signer(directory: Path, text: str = POLICY, mnemonic: str = MNEMONIC) -> Signer:
    return Signer(Seed(mnemonic), Policy.load(write_policy(directory, text)))
