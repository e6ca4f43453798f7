"""Dashboard fixtures: a database migrated to the dashboard's newest revision in the
test's own schema, the app in process over httpx (its gateway calls answered by a
recording stand-in), ops users, and clients signed in as an admin or a viewer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from stablegate_common.config import BusSettings, DatabaseSettings
from stablegate_common.db import Database
from stablegate_common.http.health import Health
from stablegate_common.migrations import upgrade
from stablegate_dashboard.app import build_app, build_context
from stablegate_dashboard.cli import MIGRATIONS
from stablegate_dashboard.settings import DashboardConfig, DashboardSettings
from stablegate_dashboard.users.service import create_user
from stablegate_dashboard.web.context import DashboardContext
from tests.dashboard.support import PASSWORD, FakeGateway, sign_in

TEST_SECRET = "dashboard-test-secret-0123456789abcdef-0123"
GATEWAY_KEY = "sk_test_" + "d" * 40

UserFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def dashboard_db(db_settings: DatabaseSettings) -> AsyncIterator[Database]:
    await asyncio.to_thread(upgrade, MIGRATIONS, db_settings)
    db = Database(db_settings)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def dashboard_config(request: pytest.FixtureRequest) -> DashboardConfig:
    """Override per test: `@pytest.mark.parametrize("dashboard_config", [{…}], indirect=True)`."""
    values: dict[str, Any] = {
        "jwt_secret": SecretStr(TEST_SECRET),
        "gateway_url": "http://gateway.test",
        "gateway_api_key": SecretStr(GATEWAY_KEY),
        "live_poll_seconds": 0.05,
    }
    values.update(getattr(request, "param", {}))
    return DashboardConfig(**values)


@pytest.fixture
def fake_gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
async def dashboard_ctx(
    dashboard_db: Database,
    db_settings: DatabaseSettings,
    bus_settings: BusSettings,
    dashboard_config: DashboardConfig,
    fake_gateway: FakeGateway,
) -> AsyncIterator[DashboardContext]:
    settings = DashboardSettings(
        environment="test", database=db_settings, bus=bus_settings, dashboard=dashboard_config
    )
    health = Health()
    health.add_check("database", dashboard_db.ping)
    ctx = build_context(settings, dashboard_db, health, gateway_transport=fake_gateway.transport())
    yield ctx
    await ctx.gateway.close()


@pytest.fixture
def dashboard_app(dashboard_ctx: DashboardContext) -> FastAPI:
    return build_app(dashboard_ctx)


@pytest.fixture
async def user_factory(dashboard_db: Database) -> UserFactory:
    counter = iter(range(1_000_000))

    async def make(role: str = "admin", email: str | None = None, password: str = PASSWORD) -> str:
        address = email or f"{role}{next(counter)}@ops.example"
        async with dashboard_db.transaction() as session:
            await create_user(session, email=address, password=password, role=role)
        return address

    return make


@pytest.fixture
async def signed_in(
    dashboard_app: FastAPI, user_factory: UserFactory
) -> AsyncIterator[Callable[[str], Awaitable[httpx.AsyncClient]]]:
    """`await signed_in("viewer")`: a client with a live session of a new user."""
    clients: list[httpx.AsyncClient] = []

    async def make(role: str = "admin") -> httpx.AsyncClient:
        email = await user_factory(role)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=dashboard_app), base_url="http://dashboard"
        )
        clients.append(client)
        response = await sign_in(client, email)
        assert response.status_code == 303, response.text[:500]
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def anonymous(dashboard_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=dashboard_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as client:
        yield client


@pytest.fixture
async def api(signed_in: Callable[[str], Awaitable[httpx.AsyncClient]]) -> httpx.AsyncClient:
    """A client signed in as an admin (the JSON API needs a session)."""
    return await signed_in("admin")
