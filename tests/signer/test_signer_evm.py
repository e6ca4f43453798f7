"""EVM signing: EIP-1559 on Ethereum, legacy EIP-155 on BSC, decoded with eth-account."""

from __future__ import annotations

from typing import Any

import pytest
import rlp
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from stablegate_signer import evm
from stablegate_signer.documents import BscTransaction, EthereumTransaction, build_request
from tests.signer.support import (
    BSC_USDT,
    ETH_DEPOSIT,
    ETH_DEPOSIT_PATH,
    ETH_FEE_PATH,
    ETH_TREASURY,
    ETH_USDT,
    EVM_CUSTOMER,
    SEED,
    bsc_tx,
    eth_topup,
    eth_tx,
)


def _one(tx: dict[str, Any]) -> Any:
    return build_request("sr_evm", [tx]).transactions[0]


@pytest.mark.parametrize("chain_id", ["1", "31337", "11155111"])
def test_ethereum_token_sweep_is_type_2_on_its_chain(chain_id: str) -> None:
    tx = _one(eth_tx(chain_id=chain_id, nonce="7"))
    assert isinstance(tx, EthereumTransaction)
    signed = evm.sign(tx, SEED.private_key(ETH_DEPOSIT_PATH))
    raw = bytes.fromhex(signed.signed_hex[2:])
    decoded = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    assert decoded["type"] == 2
    assert decoded["chainId"] == int(chain_id)
    assert decoded["nonce"] == 7
    assert decoded["gas"] == 65000
    assert decoded["maxFeePerGas"] == 2_000_000_000
    assert decoded["maxPriorityFeePerGas"] == 100_000_000
    assert decoded["to"] == bytes.fromhex(ETH_USDT[2:])
    assert decoded["value"] == 0
    data = bytes(decoded["data"])
    assert data[:4] == bytes.fromhex("a9059cbb")
    assert abi_decode(["address", "uint256"], data[4:]) == (ETH_TREASURY.lower(), 12_500_000)
    assert Account.recover_transaction(raw) == ETH_DEPOSIT
    assert signed.tx_hash == "0x" + keccak(raw).hex()


def test_native_top_up_sends_value_with_empty_data() -> None:
    tx = _one(eth_topup())
    signed = evm.sign(tx, SEED.private_key(ETH_FEE_PATH))
    decoded = TypedTransaction.from_bytes(HexBytes(signed.signed_hex)).as_dict()
    assert decoded["to"] == bytes.fromhex(ETH_DEPOSIT[2:])
    assert decoded["value"] == 130_000_000_000_000
    assert bytes(decoded["data"]) == b""


@pytest.mark.parametrize(("chain_id", "v_values"), [(56, {147, 148}), (31338, {62711, 62712})])
def test_bsc_is_legacy_with_eip155_v(chain_id: int, v_values: set[int]) -> None:
    tx = _one(bsc_tx(chain_id=str(chain_id)))
    assert isinstance(tx, BscTransaction)
    signed = evm.sign(tx, SEED.private_key(ETH_DEPOSIT_PATH))
    raw = bytes.fromhex(signed.signed_hex[2:])
    assert raw[0] >= 0xC0  # untyped
    nonce, gas_price, _gas, to, _value, data, v, _r, _s = rlp.decode(raw)
    assert int.from_bytes(v, "big") in v_values
    assert int.from_bytes(nonce, "big") == 3
    assert int.from_bytes(gas_price, "big") == 100_000_000
    assert to == bytes.fromhex(BSC_USDT[2:])
    assert abi_decode(["address", "uint256"], data[4:]) == (EVM_CUSTOMER.lower(), 25 * 10**18)
    assert Account.recover_transaction(raw) == ETH_DEPOSIT


def test_decoding_refuses_what_eth_account_would_sign_unprotected() -> None:
    key = SEED.private_key(ETH_DEPOSIT_PATH)
    base = {"nonce": 0, "gas": 21000, "to": ETH_TREASURY, "value": 1, "data": "0x"}
    replayable = Account.sign_transaction(base | {"gasPrice": 1}, key).raw_transaction
    with pytest.raises(ValueError, match="EIP-155"):
        evm.decode_signed(bytes(replayable))
    chain_zero = Account.sign_transaction(
        base | {"type": 2, "maxFeePerGas": 2, "maxPriorityFeePerGas": 1}, key
    ).raw_transaction
    decoded = evm.decode_signed(bytes(chain_zero))
    assert decoded.fields.chain_id == 0  # and chain id 0 is never a request's chain id
    with pytest.raises(ValueError, match="neither"):
        evm.decode_signed(b"\x01" + bytes(chain_zero)[1:])  # EIP-2930 is not signed either
