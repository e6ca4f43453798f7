"""One row per Transfer log (network, tx hash, log index), as the watchers last reported it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import BaseUnits
from stablegate_dashboard.db import DashboardBase


class TransferView(DashboardBase):
    __tablename__ = "transfers"
    __table_args__ = (
        Index("ix_transfers_network_to_address", "network", "to_address"),
        Index("ix_transfers_tx_hash", "tx_hash"),
    )

    network: Mapped[str] = mapped_column(String(16), primary_key=True)
    tx_hash: Mapped[str] = mapped_column(String(80), primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Order of first report: the list pages' cursor.
    position: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    token_contract: Mapped[str] = mapped_column(String(64))
    from_address: Mapped[str] = mapped_column(String(64))
    to_address: Mapped[str] = mapped_column(String(64))
    amount_base_units: Mapped[int] = mapped_column(BaseUnits)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(80))
    block_timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmations: Mapped[int] = mapped_column(Integer)
    confirmations_required: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # event time
    sequence: Mapped[int] = mapped_column(BigInteger)
