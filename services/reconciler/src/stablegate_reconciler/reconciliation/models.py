"""Reconciliation runs and the discrepancies they found.

A discrepancy stays `open` while runs keep finding the ledger and the chain apart at one
(network, asset, address), and is `resolved` by the first run that finds them equal; at
most one open discrepancy exists per address (partial unique index).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import BaseUnits
from stablegate_reconciler.db import ReconcilerBase


class ReconciliationRun(ReconcilerBase):
    __tablename__ = "reconciliation_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'completed', 'partial', 'failed')", name="status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    addresses_checked: Mapped[int] = mapped_column(Integer, default=0)
    discrepancies: Mapped[int] = mapped_column(Integer, default=0)  # mismatches seen this run
    discrepancies_opened: Mapped[int] = mapped_column(Integer, default=0)
    discrepancies_resolved: Mapped[int] = mapped_column(Integer, default=0)
    # Per network: the block compared at, or why the network could not be checked.
    networks: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class Discrepancy(ReconcilerBase):
    __tablename__ = "discrepancies"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'resolved')", name="status"),
        Index(
            "uq_discrepancies_open_address",
            "network",
            "asset",
            "address",
            unique=True,
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    network: Mapped[str] = mapped_column(String(16))
    asset: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    ledger_base_units: Mapped[int] = mapped_column(BaseUnits)
    chain_base_units: Mapped[int] = mapped_column(BaseUnits)
    block_number: Mapped[int] = mapped_column(BigInteger)
    opened_run_id: Mapped[str] = mapped_column(String(40))
    last_run_id: Mapped[str] = mapped_column(String(40))
    resolved_run_id: Mapped[str | None] = mapped_column(String(40))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
