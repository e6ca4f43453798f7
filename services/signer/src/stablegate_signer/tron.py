"""Tron transactions: the `raw_data` built from a request's fields, its txID and signature."""

from __future__ import annotations

import coincurve

from stablegate_signer import tron_proto
from stablegate_signer.addresses import tron_address_bytes, tron_address_from_public_key
from stablegate_signer.documents import SignedTransaction, TronTransaction
from stablegate_signer.evm import token_transfer_data

# Worst-case fee parameters (mainnet, chain-parameter numbers in brackets): bandwidth burned
# at 1,000 sun per byte [#3] when no free or staked bandwidth covers the transaction, and
# 1 TRX [#59] + 0.1 TRX [#60] when a TRX transfer creates the recipient's account.
SUN_PER_BANDWIDTH_BYTE = 1_000
ACCOUNT_CREATION_FEE = 1_100_000
RESULT_SIZE = 64  # java-tron adds MAX_RESULT_SIZE_IN_TX to the bytes it charges


def contract(tx: TronTransaction) -> tron_proto.TronContract:
    owner = tron_address_bytes(tx.source.address)
    amount = tx.amount.base_units
    kind = tx.contract_type
    if kind == "FreezeBalanceV2Contract":
        assert tx.resource is not None
        return tron_proto.freeze_balance_v2_contract(owner, amount, tx.resource)
    assert tx.destination is not None
    to = tron_address_bytes(tx.destination.address)
    if kind == "TransferContract":
        return tron_proto.transfer_contract(owner, to, amount)
    if kind == "TriggerSmartContract":
        assert tx.asset.contract is not None
        data = token_transfer_data(to[1:], amount)
        return tron_proto.trigger_smart_contract(owner, tron_address_bytes(tx.asset.contract), data)
    assert tx.resource is not None
    if kind == "DelegateResourceContract":
        assert tx.lock is not None
        assert tx.lock_period is not None
        return tron_proto.delegate_resource_contract(
            owner, to, amount, tx.resource, tx.lock, tx.lock_period
        )
    return tron_proto.undelegate_resource_contract(owner, to, amount, tx.resource)


def raw_data(tx: TronTransaction) -> bytes:
    return tron_proto.encode_raw(
        ref_block_bytes=bytes.fromhex(tx.ref_block_bytes),
        ref_block_hash=bytes.fromhex(tx.ref_block_hash),
        expiration=tx.expiration,
        timestamp=tx.timestamp,
        contract=contract(tx),
        fee_limit=tx.fee_limit or 0,
    )


def tron_max_fee(tx: TronTransaction) -> int:
    """fee_limit (energy burn cap) + bandwidth burned for every byte + account creation."""
    size = len(tron_proto.encode_signed(raw_data(tx), b"\0" * 65)) + RESULT_SIZE
    creation = ACCOUNT_CREATION_FEE if tx.contract_type == "TransferContract" else 0
    return (tx.fee_limit or 0) + size * SUN_PER_BANDWIDTH_BYTE + creation


def recover_address(txid: bytes, signature: bytes) -> str:
    """The Tron address whose key made `signature` (r || s || v, v ∈ {0, 1}) over `txid`."""
    if len(signature) != 65 or signature[64] not in (0, 1):
        raise ValueError("a signature is 65 bytes r || s || v with v 0 or 1")
    public = coincurve.PublicKey.from_signature_and_message(signature, txid, hasher=None)
    return tron_address_from_public_key(public.format(compressed=False)[1:])


def sign(tx: TronTransaction, private_key: bytes) -> SignedTransaction:
    raw = raw_data(tx)
    txid = tron_proto.txid(raw)
    signature = coincurve.PrivateKey(private_key).sign_recoverable(txid, hasher=None)
    if recover_address(txid, signature) != tx.source.address:
        raise RuntimeError(f"transaction {tx.id}: the signature does not recover to the source")
    return SignedTransaction(
        id=tx.id,
        network="tron",
        tx_hash=txid.hex(),
        signed_hex=tron_proto.encode_signed(raw, signature).hex(),
        raw_data_hex=raw.hex(),
        signature=signature.hex(),
    )
