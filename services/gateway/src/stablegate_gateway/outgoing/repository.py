"""The only code that writes outgoing batches and transfers.

Planners hand `create_batch` a plan; the ops edge issues its signing request
(`issue_request`) and accepts the signed file (`accept_signed`, all or nothing) or cancels
it (`cancel_batch`); the broadcaster and the chain-fact consumers move transfers on with
`apply_event`, the one place a state changes. Every change writes an
`outgoing.transfer.updated` event to the outbox in the caller's transaction; the caller
(the edge) commits. Functions here only flush.

A transfer is changed under its row lock (`lock_transfer`, or the batch lock the batch
functions take first): two processes never interleave on one transfer.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from eth_utils.address import to_checksum_address
from sqlalchemy import func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.bus import add_to_outbox
from stablegate_common.core.addresses import canonical_address
from stablegate_common.core.errors import Conflict, InvalidRequest, InvalidState, NotFound
from stablegate_common.core.ids import new_id
from stablegate_common.events import make_event
from stablegate_common.events.contracts import OutgoingTransferUpdated
from stablegate_gateway.disbursements.follow import follow_transfer
from stablegate_gateway.outgoing.models import OutgoingBatch, OutgoingTransfer
from stablegate_gateway.outgoing.plans import PlannedTransfer, PlanSummary
from stablegate_gateway.outgoing.states import (
    TERMINAL,
    InvalidOutgoingTransition,
    OutgoingEvent,
    OutgoingState,
    transition,
)
from stablegate_signer import documents
from stablegate_signer.errors import SignerError
from stablegate_signer.units import format_amount
from stablegate_signer.verify import VerifiedTransaction, verify_signed

log = logging.getLogger(__name__)

PRODUCER = "gateway"
BATCH_KINDS = frozenset({"sweep", "refund", "payout", "replacement"})
NETWORKS = frozenset({"ethereum", "bsc", "tron"})
MAX_TRANSFERS = 1000  # the signer's limit per request
# Purposes that move a merchant's money (refunds, payouts): booked against its balance.
MERCHANT_PURPOSES = frozenset({"refund", "payout"})
_LOWER_EVM = re.compile(r"0x[0-9a-f]{40}")

BatchStatus = Literal[
    "planned",
    "awaiting_signature",
    "signed",
    "broadcasting",
    "completed",
    "failed",
    "canceling",
    "canceled",
]

# Facts a caller may set through `apply_event`; anything else is a programming error.
MINED_FACTS = frozenset(
    {
        "block_number",
        "block_hash",
        "mined_at",
        "receipt_status",
        "gas_used",
        "effective_gas_price",
        "energy_used",
        "bandwidth_used",
        "fee_paid_base_units",
    }
)
FACTS = MINED_FACTS | {"failure_reason", "last_broadcast_error", "tx_hash", "signed_hex"}
_SIGNED_FACTS = frozenset({"tx_hash", "signed_hex"})


class InvalidPlan(InvalidRequest):
    """A planner handed over something the signing request cannot carry (a bug upstream)."""

    code = "invalid_plan"


class SigningRoundInFlight(Conflict):
    code = "signing_round_in_flight"


class SignedResponseRejected(InvalidRequest):
    """A signed file refused whole; `param` names the field and `transaction` the tx id."""

    code = "signed_response_rejected"

    def __init__(
        self, message: str, *, param: str | None = None, transaction: str | None = None
    ) -> None:
        where = f"transaction {transaction}: " if transaction else ""
        super().__init__(f"{where}{message}", param=param)
        self.transaction = transaction


# --- create -------------------------------------------------------------------------------


async def create_batch(
    session: AsyncSession,
    *,
    kind: str,
    network: str,
    created_by: str,
    planned: list[PlannedTransfer],
    summary: PlanSummary,
) -> OutgoingBatch:
    """Store a plan as one batch of `planned` transfers and its signing request.

    One signing round per network at a time: a new `sweep`, `refund` or `payout` batch is
    refused while a batch of that network has a transfer not yet terminal (so the fee
    wallet's nonces stay gap-free). A `replacement` is the exception: it is planned while
    the transfer it redoes is still in flight.
    """
    _check_plan(kind, network, planned)
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"outgoing:{network}"}
    )
    if kind != "replacement":
        busy = await unfinished_batch(session, network)
        if busy is not None:
            raise SigningRoundInFlight(
                f"batch {busy} on {network} is not finished; one signing round per network "
                "at a time",
                param="network",
            )
    batch_id = new_id("ob")
    ids = {p.key: new_id("ot") for p in planned}
    transactions = [_transaction(p, ids) for p in planned]
    try:
        request = documents.build_request(batch_id, transactions)
    except SignerError as exc:
        key = _key_of(exc.transaction, planned, ids)
        where = ", ".join(
            part for part in (key and f"transfer {key}", exc.field and f"field {exc.field}") if part
        )
        raise InvalidPlan(
            f"{where}: {exc.message}" if where else exc.message, param=exc.field
        ) from exc
    batch = OutgoingBatch(
        id=batch_id,
        kind=kind,
        network=network,
        request_document=documents.dump(request),
        request_digest=request.digest,
        plan_summary=summary_json(summary),
        created_by=created_by,
    )
    session.add(batch)
    await session.flush()
    for seq, (plan, tx) in enumerate(zip(planned, request.transactions, strict=True)):
        transfer = _transfer(batch_id, seq, plan, ids, documents.max_network_fee(tx))
        session.add(transfer)
        await session.flush()  # a dependency's row exists before its dependent's
        _publish(session, transfer, previous=None)
    await session.flush()
    log.info(
        "outgoing batch planned",
        extra={"batch_id": batch_id, "network": network, "kind": kind, "by": created_by},
    )
    return batch


def _check_plan(kind: str, network: str, planned: Sequence[PlannedTransfer]) -> None:
    if kind not in BATCH_KINDS:
        raise InvalidPlan(f"kind {kind!r} is not one of {sorted(BATCH_KINDS)}", param="kind")
    if network not in NETWORKS:
        raise InvalidPlan(f"network {network!r} is not one of {sorted(NETWORKS)}", param="network")
    if not planned:
        raise InvalidPlan("a batch needs at least one transfer", param="planned")
    if len(planned) > MAX_TRANSFERS:
        raise InvalidPlan(f"at most {MAX_TRANSFERS} transfers per batch", param="planned")
    seen: set[str] = set()
    for plan in planned:
        if plan.purpose in MERCHANT_PURPOSES and (plan.merchant_id is None or not plan.reference):
            # The ledger books these against a merchant's balance: never one without it.
            raise InvalidPlan(
                f"transfer {plan.key}: a {plan.purpose} needs its merchant and reference",
                param="merchant_id",
            )
        if plan.network != network:
            raise InvalidPlan(f"transfer {plan.key} is on {plan.network}, the batch on {network}")
        if plan.key in seen:
            raise InvalidPlan(f"transfer key {plan.key} appears twice", param="key")
        if plan.depends_on is not None and plan.depends_on not in seen:
            # Earlier in the list only: rows are inserted in order, and no cycle can form.
            raise InvalidPlan(
                f"transfer {plan.key} depends on {plan.depends_on}, which is not before it",
                param="depends_on",
            )
        seen.add(plan.key)


def _key_of(tx_id: str | None, planned: Sequence[PlannedTransfer], ids: dict[str, str]) -> str:
    if tx_id is None:
        return ""
    if tx_id.startswith("#") and tx_id[1:].isdigit() and int(tx_id[1:]) < len(planned):
        return planned[int(tx_id[1:])].key
    by_id = {v: k for k, v in ids.items()}
    return by_id.get(tx_id, tx_id)


def _document_address(network: str, address: str | None) -> str | None:
    """The request writes EVM addresses EIP-55 checksummed; the gateway's canonical form is
    lower case. A mixed-case address must already be a valid checksum (a typo is refused)."""
    if address is None or network == "tron" or not _LOWER_EVM.fullmatch(address):
        return address
    return to_checksum_address(address)


def _stored_address(network: str, address: str | None) -> str | None:
    return None if address is None else _canonical(network, address)


def _canonical(network: str, address: str) -> str:
    try:
        return canonical_address("tron" if network == "tron" else "evm", address)
    except ValueError as exc:
        raise InvalidPlan(str(exc)) from exc


def _required(plan: PlannedTransfer, name: str) -> int:
    value = getattr(plan, name)
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPlan(f"transfer {plan.key}: {name} is required on {plan.network}", param=name)
    return value


def _optional_uint(value: int | None) -> str | None:
    return None if value is None else str(value)


def _transaction(plan: PlannedTransfer, ids: dict[str, str]) -> dict[str, Any]:
    """The request's transaction for one planned transfer (docs/funds-out.md §4.1)."""
    tx: dict[str, Any] = {
        "id": ids[plan.key],
        "purpose": plan.purpose,
        "network": plan.network,
        "source": {
            "address": _document_address(plan.network, plan.source_address),
            "path": plan.source_path,
        },
        "destination": None
        if plan.destination_address is None
        else {
            "address": _document_address(plan.network, plan.destination_address),
            "path": plan.destination_path,
        },
        "asset": {
            "symbol": plan.asset,
            "decimals": str(plan.decimals),
            "contract": _document_address(plan.network, plan.token_contract),
        },
        "amount": {
            "base_units": str(plan.amount_base_units),
            "decimal": format_amount(plan.amount_base_units, plan.decimals)
            if plan.amount_base_units >= 0 and plan.decimals >= 0
            else str(plan.amount_base_units),
        },
    }
    if plan.network == "tron":
        tx |= {
            "contract_type": plan.tron_contract_type,
            "ref_block_bytes": plan.ref_block_bytes,
            "ref_block_hash": plan.ref_block_hash,
            "timestamp": str(_required(plan, "timestamp_ms")),
            "expiration": str(_required(plan, "expiration_ms")),
            "fee_limit": _optional_uint(plan.fee_limit),
            "resource": plan.resource,
            "lock": plan.lock,
            "lock_period": _optional_uint(plan.lock_period),
        }
        return tx
    tx |= {
        "chain_id": str(_required(plan, "chain_id")),
        "nonce": str(_required(plan, "nonce")),
        "gas": str(_required(plan, "gas_limit")),
    }
    if plan.network == "ethereum":
        tx["max_fee_per_gas"] = str(_required(plan, "max_fee_per_gas"))
        tx["max_priority_fee_per_gas"] = str(_required(plan, "max_priority_fee_per_gas"))
    else:
        tx["gas_price"] = str(_required(plan, "gas_price"))
    return tx


def _transfer(
    batch_id: str, seq: int, plan: PlannedTransfer, ids: dict[str, str], max_fee: int
) -> OutgoingTransfer:
    evm = plan.network != "tron"
    return OutgoingTransfer(
        id=ids[plan.key],
        batch_id=batch_id,
        seq=seq,
        purpose=plan.purpose,
        state=OutgoingState.PLANNED.value,
        network=plan.network,
        chain_id=plan.chain_id if evm else None,
        source_address=_canonical(plan.network, plan.source_address),
        source_path=plan.source_path,
        destination_address=_stored_address(plan.network, plan.destination_address),
        destination_path=plan.destination_path,
        asset=plan.asset,
        token_contract=_stored_address(plan.network, plan.token_contract),
        decimals=plan.decimals,
        amount_base_units=plan.amount_base_units,
        depends_on=ids[plan.depends_on] if plan.depends_on is not None else None,
        reference=plan.reference,
        merchant_id=plan.merchant_id,
        nonce=plan.nonce if evm else None,
        gas_limit=plan.gas_limit if evm else None,
        max_fee_per_gas=plan.max_fee_per_gas if plan.network == "ethereum" else None,
        max_priority_fee_per_gas=plan.max_priority_fee_per_gas
        if plan.network == "ethereum"
        else None,
        gas_price=plan.gas_price if plan.network == "bsc" else None,
        tron_contract_type=None if evm else plan.tron_contract_type,
        ref_block_bytes=None if evm else plan.ref_block_bytes,
        ref_block_hash=None if evm else plan.ref_block_hash,
        expiration_ms=None if evm else plan.expiration_ms,
        timestamp_ms=None if evm else plan.timestamp_ms,
        fee_limit=None if evm else plan.fee_limit,
        resource=None if evm else plan.resource,
        lock=None if evm else plan.lock,
        lock_period=None if evm else plan.lock_period,
        # The signer's own worst case (what its policy caps), not the planner's copy.
        max_fee_base_units=max_fee,
        estimated_fee_base_units=plan.estimated_fee_base_units,
        estimated_energy=plan.estimated_energy,
        estimated_bandwidth=plan.estimated_bandwidth,
        replaces=plan.replaces,
        broadcast_attempts=0,
        version=1,
    )


def summary_json(summary: PlanSummary) -> dict[str, object]:
    """The plan summary as stored: base units as strings, prices as decimal strings."""

    def encode(value: object) -> object:
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | Decimal):
            return str(value)
        if isinstance(value, dict):
            return {str(k): encode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [encode(v) for v in value]
        return value

    return {f.name: encode(getattr(summary, f.name)) for f in dataclasses.fields(summary)}


# --- reads --------------------------------------------------------------------------------


async def get_batch(session: AsyncSession, batch_id: str, *, lock: bool = False) -> OutgoingBatch:
    query = select(OutgoingBatch).where(OutgoingBatch.id == batch_id)
    if lock:
        query = query.with_for_update()
    batch = await session.scalar(query.execution_options(populate_existing=lock))
    if batch is None:
        raise NotFound(f"No such outgoing batch: {batch_id!r}", param="id")
    return batch


async def batch_transfers(
    session: AsyncSession, batch_id: str, *, lock: bool = False
) -> list[OutgoingTransfer]:
    query = (
        select(OutgoingTransfer)
        .where(OutgoingTransfer.batch_id == batch_id)
        .order_by(OutgoingTransfer.seq)
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return list(await session.scalars(query))


async def list_batches(
    session: AsyncSession, *, limit: int = 20, starting_after: str | None = None
) -> list[OutgoingBatch]:
    """Newest first; `starting_after` is the last batch id of the previous page."""
    query = select(OutgoingBatch).order_by(OutgoingBatch.created_at.desc(), OutgoingBatch.id.desc())
    if starting_after is not None:
        cursor = await session.get(OutgoingBatch, starting_after)
        if cursor is None:
            raise NotFound(f"No such outgoing batch: {starting_after!r}", param="starting_after")
        query = query.where(
            tuple_(OutgoingBatch.created_at, OutgoingBatch.id)
            < tuple_(cursor.created_at, cursor.id)
        )
    return list(await session.scalars(query.limit(limit)))


async def unfinished_batch(session: AsyncSession, network: str) -> str | None:
    """The id of a batch of `network` with a transfer not yet terminal, if any.

    A `canceling` transfer counts (its signed bytes may still be mined: a new round now
    could move the same funds twice, Tron having no nonce), except an EVM one: its nonce
    is the guard (the next round takes the same pending nonce, so at most one of the two
    is mined, and both are watched), and nothing but a next transaction from its source
    would ever use that nonce up and let it end."""
    query = (
        select(OutgoingTransfer.batch_id)
        .where(
            OutgoingTransfer.network == network,
            OutgoingTransfer.state.not_in([s.value for s in TERMINAL]),
            ~(
                (OutgoingTransfer.state == OutgoingState.CANCELING.value)
                & OutgoingTransfer.nonce.is_not(None)
            ),
        )
        .limit(1)
    )
    return await session.scalar(query)


async def canceling_nonces(session: AsyncSession, network: str) -> dict[str, int]:
    """Per EVM source (stored form), the lowest nonce of its `canceling` transfers not in a
    block: signed bytes for it may still be mined, so the next round reuses that nonce
    (then at most one of the two can ever be mined) instead of the pending one."""
    rows = await session.execute(
        select(OutgoingTransfer.source_address, func.min(OutgoingTransfer.nonce))
        .where(OutgoingTransfer.network == network)
        .where(OutgoingTransfer.state == OutgoingState.CANCELING.value)
        .where(OutgoingTransfer.nonce.is_not(None))
        .where(OutgoingTransfer.block_number.is_(None))
        .group_by(OutgoingTransfer.source_address)
    )
    return {source: nonce for source, nonce in rows.all() if nonce is not None}


async def lock_transfer(session: AsyncSession, transfer_id: str) -> OutgoingTransfer:
    """The transfer, its row locked (SELECT … FOR UPDATE) until the transaction ends."""
    transfer = await session.scalar(
        select(OutgoingTransfer)
        .where(OutgoingTransfer.id == transfer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if transfer is None:
        raise NotFound(f"No such outgoing transfer: {transfer_id!r}", param="id")
    return transfer


def batch_status(states: Iterable[OutgoingState | str]) -> BatchStatus:
    """A batch's status, derived from its transfers' states (never stored)."""
    current = [OutgoingState(s) for s in states]
    if not current:
        return "planned"
    if OutgoingState.CANCELING in current and all(
        s in TERMINAL or s is OutgoingState.CANCELING for s in current
    ):
        return "canceling"  # canceled, some signed bytes still watched until unminable
    if all(s in TERMINAL for s in current):
        if OutgoingState.FAILED in current:
            return "failed"
        if OutgoingState.CANCELED in current:
            return "canceled"
        return "completed"
    if any(
        s in TERMINAL | {OutgoingState.BROADCAST}
        for s in current
        if s is not OutgoingState.CANCELED
    ):
        return "broadcasting"
    if OutgoingState.SIGNED in current:
        return "signed"
    if OutgoingState.AWAITING_SIGNATURE in current:
        return "awaiting_signature"
    return "planned"


# --- issue --------------------------------------------------------------------------------


async def issue_request(session: AsyncSession, batch_id: str, *, by: str) -> str:
    """The batch's signing request as stored; the first call moves its transfers to
    `awaiting_signature`. Idempotent: every call returns the same text."""
    batch = await get_batch(session, batch_id, lock=True)
    if batch.issued_at is not None:
        return batch.request_document
    transfers = await batch_transfers(session, batch_id, lock=True)
    if batch.canceled_at is not None or any(t.state != OutgoingState.PLANNED for t in transfers):
        raise InvalidState(
            f"batch {batch_id} is {batch_status(t.state for t in transfers)}; only a planned "
            "batch can be issued",
            param="id",
        )
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    expired = [t.id for t in transfers if t.expiration_ms is not None and t.expiration_ms <= now_ms]
    if expired:
        raise InvalidState(
            f"batch {batch_id}: transaction {expired[0]} has expired; cancel it and plan again",
            param="id",
        )
    for transfer in transfers:
        await apply_event(session, transfer, OutgoingEvent.REQUEST_ISSUED)
    batch.issued_at = datetime.now(UTC)
    await session.flush()
    log.info("signing request issued", extra={"batch_id": batch_id, "by": by})
    return batch.request_document


# --- accept -------------------------------------------------------------------------------


async def accept_signed(session: AsyncSession, signed_document: bytes, *, by: str) -> OutgoingBatch:
    """Accept a signed response for one of our requests whole, or refuse it whole.

    Checks, before anything is written: the file parses; it names a request we issued and
    its digest; `verify_signed` (same fields, signatures recover to the sources, hashes
    right); every transfer is still awaiting its signature; no hash is already ours. Then
    every transfer gets its tx hash and signed bytes and becomes `signed`. The same file
    again after acceptance is a success that changes nothing.
    """
    try:
        signed = documents.load_response(signed_document)
    except SignerError as exc:
        raise SignedResponseRejected(
            f"not a signed response: {exc.message}",
            param=exc.field,
            transaction=exc.transaction,
        ) from exc
    batch = await session.scalar(
        select(OutgoingBatch)
        .where(OutgoingBatch.id == signed.request_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if batch is None:
        raise SignedResponseRejected(
            f"the signed file is for request {signed.request_id}, which this gateway did not issue",
            param="request_id",
        )
    if signed.request_digest != batch.request_digest:
        raise SignedResponseRejected(
            f"the signed file is for digest {signed.request_digest}, request {batch.id} has "
            f"{batch.request_digest} (signed from another version of the request)",
            param="request_digest",
        )
    request = documents.load_request(batch.request_document)
    try:
        verified = verify_signed(request, signed)
    except SignerError as exc:
        raise SignedResponseRejected(
            exc.message, param=exc.field, transaction=exc.transaction
        ) from exc
    transfers = await batch_transfers(session, batch.id, lock=True)
    if batch.signed_document is not None:
        return _same_as_accepted(batch, transfers, verified)
    _check_acceptable(batch, transfers)
    await _check_nonces_free(session, batch.network, transfers)
    await _check_hashes_unused(session, batch.network, verified)
    by_id = {v.id: v for v in verified}
    for transfer in transfers:
        tx = by_id[transfer.id]
        await apply_event(
            session,
            transfer,
            OutgoingEvent.SIGNATURE_ACCEPTED,
            tx_hash=tx.tx_hash,
            signed_hex=tx.signed_hex,
        )
    batch.signed_at = datetime.now(UTC)
    batch.signed_document = signed_document.decode("utf-8")
    await session.flush()
    log.info("signed response accepted", extra={"batch_id": batch.id, "by": by})
    return batch


def _same_as_accepted(
    batch: OutgoingBatch,
    transfers: Sequence[OutgoingTransfer],
    verified: Sequence[VerifiedTransaction],
) -> OutgoingBatch:
    stored = {t.id: (t.tx_hash, t.signed_hex) for t in transfers}
    for tx in verified:
        if stored.get(tx.id) != (tx.tx_hash, tx.signed_hex):
            raise SignedResponseRejected(
                f"batch {batch.id} already accepted a signed file with other signed bytes; "
                "only the one first accepted can be broadcast",
                param="signed_hex",
                transaction=tx.id,
            )
    return batch


def _check_acceptable(batch: OutgoingBatch, transfers: Sequence[OutgoingTransfer]) -> None:
    if batch.canceled_at is not None:
        raise SignedResponseRejected(f"batch {batch.id} was canceled", param="request_id")
    for transfer in transfers:
        if transfer.state != OutgoingState.AWAITING_SIGNATURE:
            raise SignedResponseRejected(
                f"is {transfer.state}, not awaiting its signature",
                param="state",
                transaction=transfer.id,
            )


async def _check_nonces_free(
    session: AsyncSession, network: str, transfers: Sequence[OutgoingTransfer]
) -> None:
    """An EVM transfer whose (source, nonce) another transfer of ours was mined with can
    never be mined (a fee bump signed after the original won): refused, so that nothing
    sits in `broadcast` forever answering "nonce too low"."""
    for transfer in transfers:
        if transfer.nonce is None:
            continue
        mined = await session.scalar(
            select(OutgoingTransfer.id)
            .where(
                OutgoingTransfer.network == network,
                OutgoingTransfer.source_address == transfer.source_address,
                OutgoingTransfer.nonce == transfer.nonce,
                OutgoingTransfer.id != transfer.id,
                OutgoingTransfer.block_number.is_not(None),
            )
            .limit(1)
        )
        if mined is not None:
            raise SignedResponseRejected(
                f"nonce {transfer.nonce} of {transfer.source_address} was already mined by "
                f"transfer {mined}; cancel this batch",
                param="nonce",
                transaction=transfer.id,
            )


async def _check_hashes_unused(
    session: AsyncSession, network: str, verified: Sequence[VerifiedTransaction]
) -> None:
    hashes = [v.tx_hash for v in verified]
    if len(set(hashes)) != len(hashes):
        raise SignedResponseRejected("two transactions have the same hash", param="tx_hash")
    taken = await session.scalar(
        select(OutgoingTransfer.id)
        .where(OutgoingTransfer.network == network, OutgoingTransfer.tx_hash.in_(hashes))
        .limit(1)
    )
    if taken is not None:
        raise SignedResponseRejected(
            f"a transaction hash is already that of transfer {taken}", param="tx_hash"
        )


# --- cancel -------------------------------------------------------------------------------


async def cancel_batch(session: AsyncSession, batch_id: str, *, by: str) -> OutgoingBatch:
    """Cancel every transfer of the batch not yet broadcast. A planned one is canceled;
    one awaiting its signature or signed becomes `canceling`: never broadcast by the
    gateway, but signed bytes may exist (the operator's file, the signer's output), so it
    is still watched and counts as in flight until it provably cannot be mined (then
    `canceled`), or is booked if it is mined after all. The stored signed bytes are
    dropped (the hash is kept: it is what the watcher tracks). Broadcast ones go on;
    idempotent once canceled."""
    batch = await get_batch(session, batch_id, lock=True)
    transfers = await batch_transfers(session, batch_id, lock=True)
    cancelable = [
        t
        for t in transfers
        if t.state
        in (OutgoingState.PLANNED, OutgoingState.AWAITING_SIGNATURE, OutgoingState.SIGNED)
    ]
    if not cancelable:
        if batch.canceled_at is not None:
            return batch
        raise InvalidState(
            f"batch {batch_id} is {batch_status(t.state for t in transfers)}: nothing left "
            "to cancel (every transfer is broadcast or finished)",
            param="id",
        )
    for transfer in cancelable:
        if transfer.state == OutgoingState.PLANNED:
            await apply_event(
                session, transfer, OutgoingEvent.CANCELED, failure_reason=f"canceled by {by}"
            )
        else:
            await apply_event(
                session,
                transfer,
                OutgoingEvent.CANCELED,
                failure_reason=f"canceled by {by} after its request was issued; its signed "
                "bytes must not be broadcast, and it is watched until it cannot be mined",
            )
    batch.canceled_at = datetime.now(UTC)
    batch.canceled_by = by
    await session.flush()
    log.info("outgoing batch canceled", extra={"batch_id": batch_id, "by": by})
    return batch


# --- the one place a state changes --------------------------------------------------------


async def apply_event(
    session: AsyncSession,
    transfer: OutgoingTransfer,
    event: OutgoingEvent | None,
    **facts: Any,
) -> OutgoingTransfer:
    """Apply `event` (or, with None, only facts) to a transfer the caller holds locked.

    The state follows `transition`; `facts` name columns (`MINED_FACTS`, `failure_reason`,
    `last_broadcast_error`, and `tx_hash`/`signed_hex` with SIGNATURE_ACCEPTED only).
    BROADCAST_SENT counts the attempt and stamps the broadcast times; REORGED_OUT forgets
    the mined facts (the block is gone) unless new ones are given. A change bumps
    `version` and writes `outgoing.transfer.updated`; facts equal to the stored ones with
    no event change nothing (a redelivered fact is a no-op).
    """
    unknown = set(facts) - FACTS
    if unknown:
        raise TypeError(f"apply_event: unknown facts {sorted(unknown)}")
    signed_facts = _SIGNED_FACTS & set(facts)
    if signed_facts and event is not OutgoingEvent.SIGNATURE_ACCEPTED:
        raise TypeError("apply_event: tx_hash and signed_hex are set by SIGNATURE_ACCEPTED only")
    if event is OutgoingEvent.SIGNATURE_ACCEPTED and signed_facts != _SIGNED_FACTS:
        raise TypeError("apply_event: SIGNATURE_ACCEPTED needs tx_hash and signed_hex")
    previous = OutgoingState(transfer.state)
    state = transition(previous, event) if event is not None else previous
    reorged = event in (OutgoingEvent.REORGED_OUT, OutgoingEvent.REORGED_OUT_CANCELED)
    if event is not None and reorged and transfer.block_number is None:
        # `transition` lets `failed` take a reorg (a revert that was mined); one that failed
        # unmined (a Tron transaction that expired) was never in a block to leave.
        raise InvalidOutgoingTransition(previous, event)
    now = datetime.now(UTC)
    changes: dict[str, Any] = {}
    if reorged:
        changes |= {name: None for name in MINED_FACTS}
    if event is OutgoingEvent.BROADCAST_SENT:
        changes["broadcast_attempts"] = (transfer.broadcast_attempts or 0) + 1
        changes["last_broadcast_at"] = now
        if transfer.first_broadcast_at is None:
            changes["first_broadcast_at"] = now
    if state is OutgoingState.CANCELING and previous is not OutgoingState.CANCELING:
        changes["signed_hex"] = None  # never broadcast by us again; the hash stays tracked
    changes |= facts
    changed = {k: v for k, v in changes.items() if getattr(transfer, k) != v}
    if event is None and not changed:
        return transfer
    for name, value in changed.items():
        setattr(transfer, name, value)
    transfer.state = state.value
    transfer.version = (transfer.version or 1) + 1
    transfer.updated_at = now
    await session.flush()
    _publish(session, transfer, previous=previous)
    await follow_transfer(session, transfer)
    return transfer


def _publish(
    session: AsyncSession, transfer: OutgoingTransfer, *, previous: OutgoingState | None
) -> None:
    payload = OutgoingTransferUpdated(
        transfer_id=transfer.id,
        batch_id=transfer.batch_id,
        purpose=transfer.purpose,
        state=OutgoingState(transfer.state),
        previous_state=previous,
        network=transfer.network,
        source_address=transfer.source_address,
        destination_address=transfer.destination_address,
        asset=transfer.asset,
        token_contract=transfer.token_contract,
        decimals=transfer.decimals,
        amount_base_units=transfer.amount_base_units,
        reference=transfer.reference,
        tx_hash=transfer.tx_hash,
        block_number=transfer.block_number,
        block_hash=transfer.block_hash,
        receipt_status=transfer.receipt_status,
        gas_used=transfer.gas_used,
        energy_used=transfer.energy_used,
        bandwidth_used=transfer.bandwidth_used,
        fee_paid_base_units=transfer.fee_paid_base_units,
        failure_reason=transfer.failure_reason,
        expiration_ms=transfer.expiration_ms,
        merchant_id=transfer.merchant_id,
    )
    add_to_outbox(
        session,
        make_event(payload, producer=PRODUCER, subject=transfer.id, sequence=transfer.version),
    )
