"""Fixtures every suite shares: real PostgreSQL and RabbitMQ, isolated per test.

Each test that needs the database gets a schema of its own (dropped afterwards); each
test that needs the bus gets an exchange and queue prefix of its own. Suites add their
fixtures as plugins under tests/fixtures/.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from pydantic import SecretStr

from stablegate_common.config import BusSettings, DatabaseSettings

pytest_plugins: list[str] = [
    "tests.fixtures.bus",
    "tests.fixtures.anvil",
    "tests.fixtures.tron",
    "tests.fixtures.tron_watcher",
    "tests.fixtures.watcher",
    "tests.fixtures.gateway",
    "tests.fixtures.payments",
    "tests.fixtures.ratefeed",
    "tests.fixtures.browser",
]

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(_plain_dsn(DATABASE_URL))
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def schema_name() -> AsyncIterator[str]:
    """A fresh schema name; the schema (if a test created it) is dropped afterwards."""
    name = unique("t")
    yield name
    await drop_schema(name)


@pytest.fixture
def db_settings(schema_name: str) -> DatabaseSettings:
    return DatabaseSettings(
        url=SecretStr(DATABASE_URL),
        DATABASE_SCHEMA=schema_name,  # the field's env alias
        pool_size=5,
    )


@pytest.fixture
def bus_settings() -> BusSettings:
    """An exchange of this test's own, so parallel or leftover consumers never interfere."""
    return BusSettings(url=SecretStr(RABBITMQ_URL), exchange=unique("stablegate.test"))
