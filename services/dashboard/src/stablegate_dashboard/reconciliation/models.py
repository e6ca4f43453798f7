"""Reconciliation runs and discrepancies, as the reconciler announced them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import BaseUnits
from stablegate_dashboard.db import DashboardBase


class ReconciliationRunView(DashboardBase):
    __tablename__ = "reconciliation_runs"
    __table_args__ = (Index("ix_reconciliation_runs_finished_at", "finished_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    addresses_checked: Mapped[int] = mapped_column(Integer)
    discrepancies: Mapped[int] = mapped_column(Integer)
    discrepancies_opened: Mapped[int] = mapped_column(Integer)
    discrepancies_resolved: Mapped[int] = mapped_column(Integer)
    networks: Mapped[dict[str, Any]] = mapped_column(JSONB)


class DiscrepancyView(DashboardBase):
    """Opened by `reconciliation.discrepancy`, closed by `…discrepancy_resolved`; the
    resolution may arrive first (queues do not order events), hence the nullable amounts."""

    __tablename__ = "discrepancies"
    __table_args__ = (Index("ix_discrepancies_status", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    network: Mapped[str] = mapped_column(String(16))
    asset: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # open | resolved
    ledger_base_units: Mapped[int | None] = mapped_column(BaseUnits)
    chain_base_units: Mapped[int | None] = mapped_column(BaseUnits)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_run_id: Mapped[str | None] = mapped_column(String(40))
