"""Gateway side: accept a signed response only if it is exactly the request, signed by its sources.

Pure: no network, no database. The gateway imports `verify_signed` and stores nothing of a
response it refuses; a single mismatching transaction refuses the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass

from stablegate_signer import evm, tron, tron_proto
from stablegate_signer.documents import (
    SignedResponse,
    SignedTransaction,
    SigningRequest,
    TronTransaction,
    check_digest,
)
from stablegate_signer.errors import SignerError, VerificationFailed


@dataclass(frozen=True)
class VerifiedTransaction:
    """One accepted transaction: what to store before broadcasting, and what to broadcast."""

    id: str
    network: str
    tx_hash: str  # EVM "0x…" keccak; Tron txID (64 hex, no prefix)
    signed_hex: str  # EVM raw tx for eth_sendRawTransaction; Tron hex for /wallet/broadcasthex
    raw_data_hex: str | None  # Tron only (for /wallet/broadcasttransaction's JSON form)
    signature: str | None  # Tron only


def verify_signed(request: SigningRequest, signed: SignedResponse) -> list[VerifiedTransaction]:
    try:
        check_digest(request)
    except SignerError as exc:
        raise VerificationFailed(f"the request itself: {exc.message}", field="digest") from exc
    if signed.request_digest != request.digest:
        raise VerificationFailed(
            f"the signed file is for request digest {signed.request_digest}, "
            f"not this request's {request.digest}",
            field="request_digest",
        )
    if signed.request_id != request.request_id:
        raise VerificationFailed(
            f"the signed file is for request {signed.request_id}", field="request_id"
        )
    wanted = [t.id for t in request.transactions]
    got = [t.id for t in signed.transactions]
    if got != wanted:
        raise VerificationFailed(
            f"the signed file lists transactions {got[:5]}…, the request {wanted[:5]}…",
            field="transactions",
        )
    return [
        _verify_one(tx, s) for tx, s in zip(request.transactions, signed.transactions, strict=True)
    ]


def _verify_one(
    tx: evm.EvmTransaction | TronTransaction, signed: SignedTransaction
) -> VerifiedTransaction:
    if signed.network != tx.network:
        raise VerificationFailed(
            f"network is {signed.network}, the request's {tx.network}",
            transaction=tx.id,
            field="network",
        )
    if isinstance(tx, TronTransaction):
        _verify_tron(tx, signed)
    else:
        _verify_evm(tx, signed)
    return VerifiedTransaction(
        tx.id, tx.network, signed.tx_hash, signed.signed_hex, signed.raw_data_hex, signed.signature
    )


def _verify_evm(tx: evm.EvmTransaction, signed: SignedTransaction) -> None:
    try:
        decoded = evm.decode_signed(bytes.fromhex(signed.signed_hex.removeprefix("0x")))
    except Exception as exc:  # any decoding failure refuses the file
        raise VerificationFailed(
            f"cannot decode the signed transaction: {exc}", transaction=tx.id, field="signed_hex"
        ) from exc
    expected = evm.expected_fields(tx)
    for name in expected.__dataclass_fields__:
        if getattr(decoded.fields, name) != getattr(expected, name):
            raise VerificationFailed(
                f"{name} is {getattr(decoded.fields, name)!r}, "
                f"the request's {getattr(expected, name)!r}",
                transaction=tx.id,
                field=name,
            )
    if decoded.sender != tx.source.address:
        raise VerificationFailed(
            f"the signature recovers to {decoded.sender}, not the source",
            transaction=tx.id,
            field="signature",
        )
    if decoded.tx_hash != signed.tx_hash:
        raise VerificationFailed(
            "tx_hash is not keccak256 of the signed bytes", transaction=tx.id, field="tx_hash"
        )


def _verify_tron(tx: TronTransaction, signed: SignedTransaction) -> None:
    raw = tron.raw_data(tx)
    assert signed.raw_data_hex is not None
    assert signed.signature is not None
    if signed.raw_data_hex != raw.hex():
        raise VerificationFailed(
            "raw_data differs from the request's fields", transaction=tx.id, field="raw_data_hex"
        )
    txid = tron_proto.txid(raw)
    if signed.tx_hash != txid.hex():
        raise VerificationFailed(
            "tx_hash is not sha256 of raw_data", transaction=tx.id, field="tx_hash"
        )
    signature = bytes.fromhex(signed.signature)
    try:
        signer = tron.recover_address(txid, signature)
    except Exception as exc:
        raise VerificationFailed(
            f"the signature does not recover: {exc}", transaction=tx.id, field="signature"
        ) from exc
    if signer != tx.source.address:
        raise VerificationFailed(
            f"the signature recovers to {signer}, not the source",
            transaction=tx.id,
            field="signature",
        )
    if signed.signed_hex != tron_proto.encode_signed(raw, signature).hex():
        raise VerificationFailed(
            "signed_hex is not raw_data with this signature", transaction=tx.id, field="signed_hex"
        )
