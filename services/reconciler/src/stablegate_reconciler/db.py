"""The declarative base of the reconciler's tables.

A metadata of its own rather than `stablegate_common.db.Base`: table names are only unique
within a service's schema (the gateway and the watchers have their own `balances`,
`transfers`, `observed_transfers`), and several services' models are loaded in one
process by tests and tools.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from stablegate_common.db import NAMING


class ReconcilerBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
