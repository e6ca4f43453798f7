"""Fixtures every suite shares: real PostgreSQL and RabbitMQ, isolated per test.

Each test that needs the database gets a schema of its own (dropped afterwards); each
test that needs the bus gets an exchange and queue prefix of its own. Suites add their
fixtures as plugins under tests/fixtures/.

PostgreSQL and RabbitMQ are the ones DATABASE_URL and RABBITMQ_URL name (`make test` starts
them with docker compose when they are down). Where one does not answer, the session
starts it with testcontainers if a Docker engine answers, and otherwise stops before the
first test with one line saying so; it never runs against anything else.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlparse

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

# Read again by every `from tests.conftest import …` (a second copy of this module: pytest
# imports this file as `conftest`); pytest_sessionstart updates both the environment and
# these before any test module is collected.
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
# The images docker-compose.yml runs (RabbitMQ 3.13 for the quorum queues' delivery limit).
POSTGRES_IMAGE = "postgres:16-bookworm"
RABBITMQ_IMAGE = "rabbitmq:3.13-management"
_containers: list[Any] = []  # testcontainers started for this session, stopped at its end


def _answers(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        address = (parsed.hostname or "127.0.0.1", parsed.port or default_port)
        socket.create_connection(address, timeout=2).close()
    except OSError:
        return False
    return True


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception:  # no SDK, no socket, no permission: no engine for us either way
        return False
    return True


def _start_postgres() -> str:
    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer(
        POSTGRES_IMAGE, username="stablegate", password="stablegate", dbname="stablegate"
    )
    container.start()
    _containers.append(container)
    return str(container.get_connection_url(driver=None))


def _start_rabbitmq() -> str:
    from testcontainers.community.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer(RABBITMQ_IMAGE, username="stablegate", password="stablegate")
    container.start()
    _containers.append(container)
    host, port = container.get_container_host_ip(), container.get_exposed_port(5672)
    return f"amqp://stablegate:stablegate@{host}:{port}/"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Make sure DATABASE_URL and RABBITMQ_URL answer before anything is collected."""
    global DATABASE_URL, RABBITMQ_URL
    wanted = {
        "DATABASE_URL": ("PostgreSQL", DATABASE_URL, 5432, _start_postgres),
        "RABBITMQ_URL": ("RabbitMQ", RABBITMQ_URL, 5672, _start_rabbitmq),
    }
    down = {var: spec for var, spec in wanted.items() if not _answers(spec[1], spec[2])}
    if not down:
        return
    # host:port only: the URLs may carry a password.
    where = " and ".join(
        f"{n} ({urlparse(u).netloc.rpartition('@')[2]})" for n, u, *_ in down.values()
    )
    if not _docker_answers():
        pytest.exit(
            f"{where} not answering, and no Docker engine for testcontainers to start "
            'it: run `make test` (it says what to do), or see README "Two commands"',
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
    started = {}
    for variable, (name, _, _, start) in down.items():
        print(f"tests: {name} not answering; starting it with testcontainers", file=sys.stderr)
        try:
            started[variable] = os.environ[variable] = start()  # for the services tests spawn
        except Exception as exc:  # an image pull or a start that failed: say which, stop
            pytest.exit(f"testcontainers could not start {name}: {exc}", returncode=4)
    DATABASE_URL = started.get("DATABASE_URL", DATABASE_URL)
    RABBITMQ_URL = started.get("RABBITMQ_URL", RABBITMQ_URL)


def pytest_sessionfinish(session: pytest.Session) -> None:
    while _containers:
        _containers.pop().stop()


T = TypeVar("T")


def run_on_own_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` from a synchronous test on a loop of its own. `asyncio.run` would unset
    the main thread's current loop, and a later test that asks for it fails."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


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
