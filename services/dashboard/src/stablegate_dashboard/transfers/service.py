"""Applying watcher reports (`transfer.*`) to the transfer read model, and listing
transfers as attributed (an intent counted it), unsolicited (nobody did) or ignored
(zero value, or not the network's registered token contract)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, not_, or_, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.assets import Asset, AssetRegistry
from stablegate_common.core.errors import UnknownNetwork
from stablegate_common.events import Event
from stablegate_common.events.contracts import ChainTransferFields
from stablegate_dashboard.db import upsert_if_newer
from stablegate_dashboard.intents.models import TransferClaimView
from stablegate_dashboard.transfers.models import TransferView
from stablegate_dashboard.web.pagination import Page, keyset_page

STATUS_BY_EVENT = {
    "transfer.detected": "detected",
    "transfer.confirmed": "confirmed",
    "transfer.reverted": "reverted",
}

_KEY = ("network", "tx_hash", "log_index")


async def apply_report(session: AsyncSession, event: Event, report: ChainTransferFields) -> bool:
    """Keep the newest report of one Transfer log; False when an older one arrived late."""
    values = {
        "network": report.network,
        "tx_hash": report.tx_hash,
        "log_index": report.log_index,
        "token_contract": report.token_contract,
        "from_address": report.from_address,
        "to_address": report.to_address,
        "amount_base_units": report.amount_base_units,
        "block_number": report.block_number,
        "block_hash": report.block_hash,
        "block_timestamp": report.block_timestamp,
        "confirmations": report.confirmations,
        "confirmations_required": report.confirmations_required,
        "status": STATUS_BY_EVENT[event.type],
        "updated_at": event.occurred_at,
        "sequence": event.sequence,
    }
    return await upsert_if_newer(session, TransferView, values, _KEY)


@dataclass(frozen=True)
class TransferFilter:
    kind: str | None = None  # attributed | unsolicited | ignored
    network: str | None = None
    status: str | None = None
    query: str | None = None  # a transaction hash or an address (sender or recipient)

    @property
    def active(self) -> bool:
        return any((self.kind, self.network, self.status, self.query))


@dataclass(frozen=True)
class TransferRow:
    transfer: TransferView
    kind: str
    intent_id: str | None
    asset: str | None
    decimals: int | None


def ignored(registry: AssetRegistry) -> ColumnElement[bool]:
    """Transfers no intent may count: zero value ("address poisoning") or a token that
    is not the registered contract of its network."""
    registered = [
        and_(
            TransferView.network == network.name,
            TransferView.token_contract.in_([a.contract for a in network.assets]),
        )
        for network in registry
    ]
    return or_(TransferView.amount_base_units == 0, not_(or_(false(), *registered)))


def _claimed() -> ColumnElement[bool]:
    return exists().where(
        TransferClaimView.network == TransferView.network,
        TransferClaimView.tx_hash == TransferView.tx_hash,
        TransferClaimView.log_index == TransferView.log_index,
    )


def filtered(registry: AssetRegistry, wanted: TransferFilter) -> Select[Any]:
    conditions: list[ColumnElement[bool]] = []
    if wanted.kind == "attributed":
        conditions.append(_claimed())
    elif wanted.kind == "unsolicited":
        conditions += [~_claimed(), ~ignored(registry)]
    elif wanted.kind == "ignored":
        conditions.append(ignored(registry))
    if wanted.network:
        conditions.append(TransferView.network == wanted.network)
    if wanted.status:
        conditions.append(TransferView.status == wanted.status)
    if wanted.query:
        text = wanted.query.strip()
        variants = sorted({text, text.lower()})
        conditions.append(
            or_(
                TransferView.tx_hash.in_(variants),
                TransferView.to_address.in_(variants),
                TransferView.from_address.in_(variants),
            )
        )
    return select(TransferView).where(and_(true(), *conditions))


async def list_transfers(
    session: AsyncSession,
    registry: AssetRegistry,
    wanted: TransferFilter,
    *,
    starting_after: int | None = None,
    ending_before: int | None = None,
) -> Page[TransferRow]:
    page = await keyset_page(
        session,
        filtered(registry, wanted),
        TransferView.position,
        starting_after=starting_after,
        ending_before=ending_before,
    )
    claims = await _claims_of(session, page.items)
    rows = [
        describe(registry, t, claims.get((t.network, t.tx_hash, t.log_index))) for t in page.items
    ]
    return Page(rows, page.has_older, page.has_newer, page.cursors)


def describe(registry: AssetRegistry, transfer: TransferView, intent_id: str | None) -> TransferRow:
    asset = _asset(registry, transfer.network, transfer.token_contract)
    if intent_id is not None:
        kind = "attributed"
    elif transfer.amount_base_units == 0 or asset is None:
        kind = "ignored"
    else:
        kind = "unsolicited"
    return TransferRow(
        transfer,
        kind,
        intent_id,
        asset.symbol if asset else None,
        asset.decimals if asset else None,
    )


def _asset(registry: AssetRegistry, network: str, contract: str) -> Asset | None:
    try:
        return registry.network(network).asset_by_contract(contract)
    except (UnknownNetwork, ValueError):
        return None


async def _claims_of(
    session: AsyncSession, transfers: Sequence[TransferView]
) -> dict[tuple[str, str, int], str]:
    if not transfers:
        return {}
    keys = [(t.network, t.tx_hash, t.log_index) for t in transfers]
    rows = await session.execute(
        select(
            TransferClaimView.network,
            TransferClaimView.tx_hash,
            TransferClaimView.log_index,
            TransferClaimView.intent_id,
        ).where(
            tuple_(
                TransferClaimView.network, TransferClaimView.tx_hash, TransferClaimView.log_index
            ).in_(keys)
        )
    )
    return {(n, h, i): intent for n, h, i, intent in rows}


async def transfer_reports(
    session: AsyncSession, network: str, logs: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], TransferView]:
    """The watchers' newest reports of these (tx hash, log index) pairs on one network."""
    if not logs:
        return {}
    rows = await session.scalars(
        select(TransferView).where(
            TransferView.network == network,
            tuple_(TransferView.tx_hash, TransferView.log_index).in_(list(logs)),
        )
    )
    return {(t.tx_hash, t.log_index): t for t in rows}
