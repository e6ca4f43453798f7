"""Gateway-side verification: a signed file is accepted only if it is exactly its request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import coincurve
import pytest
import rlp
from eth_account import Account
from eth_utils import keccak

from stablegate_signer import evm, tron, tron_proto
from stablegate_signer.documents import SignedResponse, SignedTransaction, TronTransaction
from stablegate_signer.errors import VerificationFailed
from stablegate_signer.keys import Seed
from stablegate_signer.verify import verify_signed
from tests.signer.support import (
    ATTACKER,
    ETH_DEPOSIT_PATH,
    OTHER_MNEMONIC,
    TRON_DEPOSIT_PATH,
    bsc_tx,
    eth_tx,
    request,
    signer,
    tron_trc20,
)


def txs() -> list[dict[str, Any]]:
    """Built when a test runs: Tron times are checked against the signer's clock."""
    return [eth_tx(), bsc_tx(), tron_trc20()]


WRONG_KEY = Seed(OTHER_MNEMONIC)


@pytest.fixture
def signed_pair(tmp_path: Path) -> tuple[Any, SignedResponse]:
    req = request(*txs())
    return req, signer(tmp_path).sign(req)


def _replace(response: SignedResponse, index: int, **fields: Any) -> SignedResponse:
    txs = list(response.transactions)
    txs[index] = txs[index].model_copy(update=fields)
    return response.model_copy(update={"transactions": txs})


def test_a_matching_file_is_accepted(signed_pair: tuple[Any, SignedResponse]) -> None:
    req, signed = signed_pair
    verified = verify_signed(req, signed)
    assert [v.id for v in verified] == ["ot_eth_1", "ot_bsc_1", "ot_tron_1"]
    assert verified[0].tx_hash.startswith("0x")
    assert verified[2].raw_data_hex is not None


def test_a_file_for_another_request_is_refused(tmp_path: Path) -> None:
    req = request(*txs())
    other = request(*txs(), request_id="sr_other")
    signed_other = signer(tmp_path).sign(other)
    with pytest.raises(VerificationFailed) as info:
        verify_signed(req, signed_other)
    assert info.value.field == "request_digest"
    # Same digest but another request id: refused too.
    relabelled = signed_other.model_copy(update={"request_id": "sr_other2"})
    with pytest.raises(VerificationFailed):
        verify_signed(other, relabelled)


def _evm_signed_by(tx: Any, key: bytes) -> SignedTransaction:
    fields = evm.expected_fields(tx)
    raw = bytes(Account.sign_transaction(evm._eth_account_dict(fields), key).raw_transaction)
    return SignedTransaction(
        id=tx.id,
        network=tx.network,
        tx_hash=evm.decode_signed(raw).tx_hash,
        signed_hex="0x" + raw.hex(),
    )


def test_an_evm_signature_from_a_wrong_key_is_refused(
    signed_pair: tuple[Any, SignedResponse],
) -> None:
    req, signed = signed_pair
    forged = _evm_signed_by(req.transactions[0], WRONG_KEY.private_key(ETH_DEPOSIT_PATH))
    with pytest.raises(VerificationFailed) as info:
        verify_signed(req, _replace(signed, 0, **forged.model_dump()))
    assert (info.value.transaction, info.value.field) == ("ot_eth_1", "signature")


def test_a_tron_signature_from_a_wrong_key_is_refused(
    signed_pair: tuple[Any, SignedResponse],
) -> None:
    req, signed = signed_pair
    tx = req.transactions[2]
    assert isinstance(tx, TronTransaction)
    raw = tron.raw_data(tx)
    sig = coincurve.PrivateKey(WRONG_KEY.private_key(TRON_DEPOSIT_PATH)).sign_recoverable(
        tron_proto.txid(raw), hasher=None
    )
    forged = {"signature": sig.hex(), "signed_hex": tron_proto.encode_signed(raw, sig).hex()}
    with pytest.raises(VerificationFailed) as info:
        verify_signed(req, _replace(signed, 2, **forged))
    assert (info.value.transaction, info.value.field) == ("ot_tron_1", "signature")


@pytest.mark.parametrize(
    ("index", "change", "field"),
    [
        (0, {"amount": {"base_units": "12500001", "decimal": "12.500001"}}, "data"),
        (0, {"destination": {"address": ATTACKER, "path": None}}, "data"),
        (0, {"nonce": "1"}, "nonce"),
        (0, {"max_fee_per_gas": "2000000001"}, "max_fee_per_gas"),
        (0, {"chain_id": "31337"}, "chain_id"),
        (1, {"gas_price": "100000001"}, "gas_price"),
        (1, {"destination": {"address": ATTACKER, "path": None}}, "data"),
        (2, {"amount": {"base_units": "9000001", "decimal": "9.000001"}}, "raw_data_hex"),
        (
            2,
            {"destination": {"address": "TEkxiTehnzSmSe2XqrBj4w32RUN966rdz8", "path": None}},
            "raw_data_hex",
        ),
        (2, {"fee_limit": "30000001"}, "raw_data_hex"),
    ],
)
def test_a_transaction_signed_with_other_fields_is_refused(
    tmp_path: Path, index: int, change: dict[str, Any], field: str
) -> None:
    """The real key signed a changed transaction (a compromised path between signer and
    gateway cannot forge, but a swapped file could carry such bytes): refused by field."""
    req = request(*txs())
    changed = [dict(t) for t in txs()]
    changed[index] |= change
    policy_free = signer(tmp_path)
    tampered_tx = request(*changed, request_id="sr_tampered").transactions[index]
    key = policy_free.seed.private_key(tampered_tx.source.path or "")
    if isinstance(tampered_tx, TronTransaction):
        forged = tron.sign(tampered_tx, key)
    else:
        forged = evm.sign(tampered_tx, key)
    genuine = policy_free.sign(req)
    with pytest.raises(VerificationFailed) as info:
        verify_signed(req, _replace(genuine, index, **forged.model_dump()))
    assert (info.value.transaction, info.value.field) == (txs()[index]["id"], field)


def test_a_flipped_byte_or_a_wrong_hash_is_refused(
    signed_pair: tuple[Any, SignedResponse],
) -> None:
    req, signed = signed_pair
    for index in range(3):
        hex_ = signed.transactions[index].signed_hex
        flipped = hex_[:-4] + ("00" if hex_[-4:-2] != "00" else "11") + hex_[-2:]
        with pytest.raises(VerificationFailed):
            verify_signed(req, _replace(signed, index, signed_hex=flipped))
    with pytest.raises(VerificationFailed, match="tx_hash"):
        verify_signed(req, _replace(signed, 0, tx_hash="0x" + "0" * 64))
    with pytest.raises(VerificationFailed, match="tx_hash"):
        verify_signed(req, _replace(signed, 2, tx_hash="0" * 64))


def test_missing_or_reordered_transactions_are_refused(
    signed_pair: tuple[Any, SignedResponse],
) -> None:
    req, signed = signed_pair
    txs = list(signed.transactions)
    for wrong in (txs[:2], [txs[1], txs[0], txs[2]]):
        with pytest.raises(VerificationFailed) as info:
            verify_signed(req, signed.model_copy(update={"transactions": wrong}))
        assert info.value.field == "transactions"


@pytest.mark.parametrize("index", [0, 1], ids=["type-2", "legacy"])
def test_the_high_s_twin_of_a_valid_signature_is_refused(
    signed_pair: tuple[Any, SignedResponse], index: int
) -> None:
    """(r, n - s) recovers to the same key but nodes refuse it (EIP-2), under another hash."""
    req, signed = signed_pair
    raw = bytes.fromhex(signed.transactions[index].signed_hex.removeprefix("0x"))
    typed = raw[:1] == b"\x02"
    items = rlp.decode(raw[1:] if typed else raw)
    s = int.from_bytes(items[-1], "big")
    items[-1] = (evm.SECP256K1_N - s).to_bytes(32, "big")
    if typed:
        items[-3] = b"\x01" if items[-3] in (b"", b"\x00") else b""  # y parity flips
    else:
        v = int.from_bytes(items[-3], "big")  # 35 + 2 chain id + parity (EIP-155)
        flipped = v + 1 if (v - 35) % 2 == 0 else v - 1
        items[-3] = flipped.to_bytes((flipped.bit_length() + 7) // 8, "big")
    twin = (b"\x02" if typed else b"") + rlp.encode(items)
    assert Account.recover_transaction(twin) == Account.recover_transaction(raw)
    forged = {"signed_hex": "0x" + twin.hex(), "tx_hash": "0x" + keccak(twin).hex()}
    with pytest.raises(VerificationFailed) as info:
        verify_signed(req, _replace(signed, index, **forged))
    assert info.value.field == "signed_hex"
    assert "EIP-2" in str(info.value)
