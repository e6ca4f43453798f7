"""On-chain transfers as the gateway sees them: a chain fact plus the intent it counts for.

`intent_id` is null for an unsolicited transfer (no intent held the address): kept,
never dropped.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import Base, BaseUnits


class Transfer(Base):
    __tablename__ = "transfers"
    __table_args__ = (UniqueConstraint("network", "tx_hash", "log_index"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    intent_id: Mapped[str | None] = mapped_column(ForeignKey("payment_intents.id"), index=True)
    network: Mapped[str] = mapped_column(String(16))
    token_contract: Mapped[str] = mapped_column(String(64))
    tx_hash: Mapped[str] = mapped_column(String(80))
    log_index: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(80))
    block_timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    from_address: Mapped[str] = mapped_column(String(64))
    to_address: Mapped[str] = mapped_column(String(64), index=True)
    amount_base_units: Mapped[int] = mapped_column(BaseUnits)
    status: Mapped[str] = mapped_column(String(16))  # pending | confirmed | reverted
    confirmations: Mapped[int] = mapped_column(Integer, default=0)
    # The watcher's per-transfer event sequence; older events are ignored.
    chain_sequence: Mapped[int] = mapped_column(Integer, default=0)
    detected_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When an unsolicited transfer was announced (`transfer.unsolicited`): once only.
    announced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
