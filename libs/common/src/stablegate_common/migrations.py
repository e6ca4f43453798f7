"""Alembic, one history per service, each in the service's own PostgreSQL schema.

Run by a command (`stablegate-<service> migrate`), never at import or by `create_all`.
Each service's `migrations/env.py` is two lines that call `run_env()`; the schema and URL
come from the service's settings. Concurrent runs (several replicas starting at once)
serialise on an advisory lock.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from stablegate_common.config import DatabaseSettings

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _check_schema(schema: str) -> str:
    if not _SCHEMA.match(schema):
        raise ValueError(f"invalid schema name {schema!r}: use lowercase letters, digits and _")
    return schema


def alembic_config(script_location: Path, settings: DatabaseSettings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["database_url"] = settings.async_url()
    cfg.attributes["schema"] = _check_schema(settings.schema_name)
    return cfg


def upgrade(script_location: Path, settings: DatabaseSettings, revision: str = "head") -> None:
    """Bring the service's schema to `revision`. Synchronous: call it from a CLI or a thread."""
    command.upgrade(alembic_config(script_location, settings), revision)


def run_env() -> None:
    """The body of every service's `env.py`."""
    cfg = context.config
    url: str = cfg.attributes["database_url"]
    schema: str = cfg.attributes["schema"]
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, version_table_schema=schema)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(url, schema))


async def _run_online(url: str, schema: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(
                text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": f"migrate:{schema}"}
            )
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.execute(text(f'SET search_path TO "{schema}"'))
            await conn.commit()
            await conn.run_sync(_run_sync, schema)
            await conn.execute(
                text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": f"migrate:{schema}"}
            )
            await conn.commit()
    finally:
        await engine.dispose()


def _run_sync(conn: Connection, schema: str) -> None:
    context.configure(connection=conn, version_table_schema=schema, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
