"""EVM transactions: what the signer signs, signing itself, and decoding a signed one back.

Ethereum is signed as EIP-1559 (type 2, empty access list), BSC as legacy EIP-155. The
fields are always given to eth-account explicitly, chain id included, and the signed bytes
are decoded again and compared before they leave: eth-account would sign a type-2 without
`chainId` as chain 0 and a legacy one with a replayable v = 27.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rlp
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from stablegate_signer.documents import BscTransaction, EthereumTransaction, SignedTransaction

ERC20_TRANSFER_SELECTOR = keccak(text="transfer(address,uint256)")[:4]
EvmTransaction = EthereumTransaction | BscTransaction


def token_transfer_data(recipient20: bytes, amount: int) -> bytes:
    """ABI call data of `transfer(address,uint256)`; also the TRC-20 call data on Tron."""
    return ERC20_TRANSFER_SELECTOR + recipient20.rjust(32, b"\0") + amount.to_bytes(32, "big")


@dataclass(frozen=True)
class EvmFields:
    """Every field that goes into the signature (plus the sender, which the signature implies)."""

    tx_type: int  # 2 or 0 (legacy)
    chain_id: int
    nonce: int
    gas: int
    to: str
    value: int
    data: bytes
    max_fee_per_gas: int | None
    max_priority_fee_per_gas: int | None
    gas_price: int | None


def expected_fields(tx: EvmTransaction) -> EvmFields:
    """The fields to sign, derived from the request's checked business fields."""
    assert tx.destination is not None  # a validated EVM transaction is always a transfer
    if tx.asset.contract is None:
        to, value, data = tx.destination.address, tx.amount.base_units, b""
    else:
        recipient = bytes.fromhex(tx.destination.address[2:])
        to, value = tx.asset.contract, 0
        data = token_transfer_data(recipient, tx.amount.base_units)
    if isinstance(tx, EthereumTransaction):
        return EvmFields(
            2,
            tx.chain_id,
            tx.nonce,
            tx.gas,
            to,
            value,
            data,
            tx.max_fee_per_gas,
            tx.max_priority_fee_per_gas,
            None,
        )
    return EvmFields(0, tx.chain_id, tx.nonce, tx.gas, to, value, data, None, None, tx.gas_price)


def _eth_account_dict(fields: EvmFields) -> dict[str, Any]:
    common: dict[str, Any] = {
        "chainId": fields.chain_id,
        "nonce": fields.nonce,
        "gas": fields.gas,
        "to": fields.to,
        "value": fields.value,
        "data": "0x" + fields.data.hex(),
    }
    if fields.tx_type == 2:
        return common | {
            "type": 2,
            "maxFeePerGas": fields.max_fee_per_gas,
            "maxPriorityFeePerGas": fields.max_priority_fee_per_gas,
            "accessList": [],
        }
    return common | {"gasPrice": fields.gas_price}


@dataclass(frozen=True)
class DecodedEvm:
    fields: EvmFields
    sender: str
    tx_hash: str


def _int(item: object, name: str) -> int:
    if not isinstance(item, bytes) or (item[:1] == b"\0"):
        raise ValueError(f"{name}: not a canonical RLP integer")
    return int.from_bytes(item, "big")


def _address(item: object) -> str:
    if not isinstance(item, bytes) or len(item) != 20:
        raise ValueError("to: not a 20-byte address (contract creation is never signed)")
    return to_checksum_address(item)


# secp256k1's group order. A signature (r, s) also verifies as (r, n - s): EIP-2 makes nodes
# refuse the high-s twin, and its hash differs, so a file carrying it would be accepted here,
# refused on broadcast, and the honest bytes refused as another hash. Only low s is taken.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _check_canonical(r: int, s: int) -> None:
    if not 0 < r < SECP256K1_N:
        raise ValueError("r: out of range")
    if not 0 < s <= SECP256K1_N // 2:
        raise ValueError("s: not in the lower half of the curve order (EIP-2)")


def decode_signed(raw: bytes) -> DecodedEvm:
    """Decode a signed type-2 or legacy EIP-155 transaction; raises ValueError otherwise."""
    try:
        if raw[:1] == b"\x02":
            items = rlp.decode(raw[1:])
            if not isinstance(items, list) or len(items) != 12:
                raise ValueError("a type-2 transaction has 12 fields")
            if items[8] != []:
                raise ValueError("access_list: the signer signs none")
            if _int(items[9], "y_parity") not in (0, 1):
                raise ValueError("y_parity: not 0 or 1")
            fields = EvmFields(
                2,
                _int(items[0], "chain_id"),
                _int(items[1], "nonce"),
                _int(items[4], "gas"),
                _address(items[5]),
                _int(items[6], "value"),
                bytes(items[7]),
                _int(items[3], "max_fee_per_gas"),
                _int(items[2], "max_priority_fee_per_gas"),
                None,
            )
        elif raw[:1] and raw[0] >= 0xC0:
            items = rlp.decode(raw)
            if not isinstance(items, list) or len(items) != 9:
                raise ValueError("a legacy transaction has 9 fields")
            v = _int(items[6], "v")
            if v < 37:
                raise ValueError("v: no EIP-155 chain id (replayable on every chain)")
            chain_id = (v - 35) // 2
            fields = EvmFields(
                0,
                chain_id,
                _int(items[0], "nonce"),
                _int(items[2], "gas"),
                _address(items[3]),
                _int(items[4], "value"),
                bytes(items[5]),
                None,
                None,
                _int(items[1], "gas_price"),
            )
        else:
            raise ValueError("neither a type-2 nor a legacy transaction")
        _check_canonical(_int(items[-2], "r"), _int(items[-1], "s"))
        sender = Account.recover_transaction(raw)
    except rlp.exceptions.DecodingError as exc:
        raise ValueError(f"not valid RLP: {exc}") from exc
    return DecodedEvm(fields, to_checksum_address(sender), "0x" + keccak(raw).hex())


def sign(tx: EvmTransaction, private_key: bytes) -> SignedTransaction:
    fields = expected_fields(tx)
    signed = Account.sign_transaction(_eth_account_dict(fields), private_key)
    raw = bytes(signed.raw_transaction)
    decoded = decode_signed(raw)
    # Belt and braces: what was signed is exactly what was checked, on the right chain.
    if decoded.fields != fields or decoded.sender != tx.source.address:
        raise RuntimeError(f"transaction {tx.id}: signed bytes differ from the checked fields")
    return SignedTransaction(
        id=tx.id, network=tx.network, tx_hash=decoded.tx_hash, signed_hex="0x" + raw.hex()
    )
