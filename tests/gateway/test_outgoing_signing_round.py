"""A signing round on the real PostgreSQL: plan → issue → sign (the real signer, in
process) → accept; and every refusal leaves every outgoing row as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import coincurve
import pytest
from eth_account import Account

from stablegate_gateway.context import GatewayContext
from stablegate_gateway.outgoing import repository
from stablegate_gateway.outgoing.repository import SignedResponseRejected
from stablegate_signer import documents, evm, tron_proto
from stablegate_signer.keys import Seed
from stablegate_signer.units import format_amount
from stablegate_signer.verify import verify_signed
from tests.gateway.outgoing_support import (
    EVM_OTHER,
    OTHER_MNEMONIC,
    events_of,
    evm_plan,
    issue,
    make_batch,
    replace,
    signer,
    snapshot,
    transfers_of,
    tron_plan,
)


def sign(tmp_path: Path, request_text: str, mnemonic: str | None = None) -> bytes:
    request = documents.load_request(request_text)
    sig = signer(tmp_path) if mnemonic is None else signer(tmp_path, mnemonic)
    return documents.dump(sig.sign(request)).encode()


async def accept(ctx: GatewayContext, signed: bytes) -> Any:
    async with ctx.db.transaction() as session:
        return await repository.accept_signed(session, signed, by="usr_test")


@pytest.mark.parametrize("plan", [evm_plan, tron_plan], ids=["ethereum", "tron"])
async def test_a_round_from_plan_to_signed(
    gateway_ctx: GatewayContext, tmp_path: Path, plan: Any
) -> None:
    batch_id = await make_batch(gateway_ctx, plan())
    before = await transfers_of(gateway_ctx, batch_id)
    assert [t.state for t in before] == ["planned"] * len(before)
    request_text = await issue(gateway_ctx, batch_id)
    assert await issue(gateway_ctx, batch_id) == request_text  # idempotent, same bytes
    request = documents.load_request(request_text)
    assert request.request_id == batch_id
    assert [t.id for t in request.transactions] == [t.id for t in before]
    issued = await transfers_of(gateway_ctx, batch_id)
    assert {t.state for t in issued} == {"awaiting_signature"}

    signed = sign(tmp_path, request_text)
    batch = await accept(gateway_ctx, signed)
    assert batch.id == batch_id
    assert batch.signed_at is not None
    after = await transfers_of(gateway_ctx, batch_id)
    verified = verify_signed(request, documents.load_response(signed))
    assert [(t.state, t.tx_hash, t.signed_hex) for t in after] == [
        ("signed", v.tx_hash, v.signed_hex) for v in verified
    ]
    # Every step was an event: planned, awaiting_signature, signed, in order.
    for transfer in after:
        states = [e["data"]["state"] for e in await events_of(gateway_ctx, transfer.id)]
        assert states == ["planned", "awaiting_signature", "signed"]
        sequences = [e["sequence"] for e in await events_of(gateway_ctx, transfer.id)]
        assert sequences == [1, 2, 3]

    # The same file again: success, nothing changes.
    unchanged = await snapshot(gateway_ctx)
    assert (await accept(gateway_ctx, signed)).id == batch_id
    assert await snapshot(gateway_ctx) == unchanged


async def test_the_sweep_depends_on_its_top_up(gateway_ctx: GatewayContext) -> None:
    batch_id = await make_batch(gateway_ctx, evm_plan())
    topup, sweep = await transfers_of(gateway_ctx, batch_id)
    assert (topup.purpose, sweep.purpose) == ("fee_topup", "sweep")
    assert sweep.depends_on == topup.id
    assert topup.depends_on is None
    assert (topup.seq, sweep.seq) == (0, 1)
    assert sweep.max_fee_base_units == 65_000 * 2_000_000_000  # the signer's worst case


async def _issued_evm(ctx: GatewayContext) -> tuple[str, str]:
    batch_id = await make_batch(ctx, evm_plan())
    return batch_id, await issue(ctx, batch_id)


async def _refused(ctx: GatewayContext, signed: bytes) -> SignedResponseRejected:
    before = await snapshot(ctx)
    with pytest.raises(SignedResponseRejected) as info:
        await accept(ctx, signed)
    assert await snapshot(ctx) == before  # nothing half-written
    assert info.value.code == "signed_response_rejected"
    return info.value


async def test_a_file_for_another_request_is_refused(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    await _issued_evm(gateway_ctx)
    # A request this gateway never issued, signed for real.
    tron_text = await _issued_tron(gateway_ctx)
    stranger = documents.build_request("ob_not_ours", json.loads(tron_text)["transactions"])
    error = await _refused(gateway_ctx, sign(tmp_path, documents.dump(stranger)))
    assert error.param == "request_id"
    assert "did not issue" in error.message


async def _issued_tron(ctx: GatewayContext) -> str:
    batch_id = await make_batch(ctx, tron_plan())
    return await issue(ctx, batch_id)


async def test_a_digest_mismatch_is_refused(gateway_ctx: GatewayContext, tmp_path: Path) -> None:
    _, request_text = await _issued_evm(gateway_ctx)
    signed = json.loads(sign(tmp_path, request_text))
    signed["request_digest"] = "sha256:" + "ab" * 32
    error = await _refused(gateway_ctx, json.dumps(signed).encode())
    assert error.param == "request_digest"


async def test_a_signature_from_a_wrong_key_is_refused(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    _, request_text = await _issued_evm(gateway_ctx)
    # The other seed cannot sign our request (its addresses differ); sign a copy whose
    # sources are the other seed's, then hand its signed bytes in for ours.
    request = documents.load_request(request_text)
    signed = json.loads(sign(tmp_path, request_text))
    other = Seed(OTHER_MNEMONIC)
    tx = request.transactions[1]
    assert isinstance(tx, documents.EthereumTransaction)
    assert tx.source.path is not None
    fields = evm._eth_account_dict(evm.expected_fields(tx))
    raw = bytes(Account.sign_transaction(fields, other.private_key(tx.source.path)).raw_transaction)
    signed["transactions"][1] |= {
        "tx_hash": evm.decode_signed(raw).tx_hash,
        "signed_hex": "0x" + raw.hex(),
    }
    error = await _refused(gateway_ctx, json.dumps(signed).encode())
    assert error.param == "signature"
    assert error.transaction == tx.id


async def test_a_changed_amount_or_destination_is_refused(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    batch_id, request_text = await _issued_evm(gateway_ctx)
    transfers = await transfers_of(gateway_ctx, batch_id)
    for change in ({"amount_base_units": 26_000_000}, {"destination_address": EVM_OTHER}):
        # The same request id and digest, but the signer was shown other values.
        plan = evm_plan()
        plan[1] = replace(plan[1], **change)
        content = json.loads(request_text)
        tampered = documents.build_request(
            batch_id,
            [
                tx | {"id": t.id}
                for tx, t in zip(_transactions_of(plan, content), transfers, strict=True)
            ],
        )
        signed = json.loads(sign(tmp_path, documents.dump(tampered)))
        signed["request_digest"] = content["digest"]
        error = await _refused(gateway_ctx, json.dumps(signed).encode())
        assert error.param == "data"
        assert error.transaction == transfers[1].id


def _transactions_of(plan: list[Any], content: dict[str, Any]) -> list[dict[str, Any]]:
    txs: list[dict[str, Any]] = content["transactions"]
    sweep = dict(txs[1])
    new = plan[1]
    sweep["destination"] = {"address": new.destination_address, "path": None}
    sweep["amount"] = {
        "base_units": str(new.amount_base_units),
        "decimal": format_amount(new.amount_base_units, 6),
    }
    return [txs[0], sweep]


async def test_a_second_signing_after_acceptance_is_refused_unless_identical(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    _, request_text = await _issued_evm(gateway_ctx)
    signed = sign(tmp_path, request_text)
    await accept(gateway_ctx, signed)
    # Re-serialized (another layout, same content): still the accepted bytes, accepted.
    again = json.dumps(json.loads(signed)).encode()
    unchanged = await snapshot(gateway_ctx)
    await accept(gateway_ctx, again)
    assert await snapshot(gateway_ctx) == unchanged


async def test_a_file_for_a_request_not_issued_yet_is_refused(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    batch_id = await make_batch(gateway_ctx, evm_plan())
    async with gateway_ctx.db.sessions() as session:
        batch = await repository.get_batch(session, batch_id)
    signed = sign(tmp_path, batch.request_document)  # leaked before it was issued
    error = await _refused(gateway_ctx, signed)
    assert error.param == "state"


async def test_garbage_is_refused_naming_why(gateway_ctx: GatewayContext) -> None:
    error = await _refused(gateway_ctx, b'{"format": "nope"}')
    assert error.message.startswith("not a signed response")
    error = await _refused(gateway_ctx, b"\xff\xfe")
    assert error.message.startswith("not a signed response")


async def test_a_tron_signature_from_a_wrong_key_is_refused(
    gateway_ctx: GatewayContext, tmp_path: Path
) -> None:
    request_text = await _issued_tron(gateway_ctx)
    request = documents.load_request(request_text)
    signed = json.loads(sign(tmp_path, request_text))
    tx = request.transactions[0]
    assert tx.source.path is not None
    raw = bytes.fromhex(signed["transactions"][0]["raw_data_hex"])
    wrong = coincurve.PrivateKey(Seed(OTHER_MNEMONIC).private_key(tx.source.path))
    signature = wrong.sign_recoverable(tron_proto.txid(raw), hasher=None)
    signed["transactions"][0] |= {
        "signature": signature.hex(),
        "signed_hex": tron_proto.encode_signed(raw, signature).hex(),
    }
    error = await _refused(gateway_ctx, json.dumps(signed).encode())
    assert error.param == "signature"
    assert "recovers to" in error.message
