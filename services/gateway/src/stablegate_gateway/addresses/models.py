"""The deposit-address pool: derived ahead of need from a watch-only xpub.

One row per derived address of a network family. EVM addresses serve Ethereum and BSC
alike, so an address is live for at most one intent on one network at a time; a payment
to it on the other EVM network is then recognisable as a wrong-network payment.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from stablegate_common.db import Base


class DepositAddress(Base):
    __tablename__ = "deposit_addresses"
    __table_args__ = (
        UniqueConstraint("family", "derivation_index"),
        UniqueConstraint("family", "address"),
        # In allocation order: never used first, then the one released longest ago.
        Index(
            "ix_deposit_addresses_free",
            "family",
            text("released_at NULLS FIRST"),
            "derivation_index",
            postgresql_where="status = 'free'",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    family: Mapped[str] = mapped_column(String(8))  # evm | tron
    derivation_index: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(64))  # canonical form
    status: Mapped[str] = mapped_column(String(16), default="free")  # free|allocated|cooling
    intent_id: Mapped[str | None] = mapped_column(String(40))
    network: Mapped[str | None] = mapped_column(String(16))  # network of the current holder
    allocated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cooling_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When it last returned to the pool (NULL: never held). Kept while it is held again.
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    provisioned_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
