"""The dashboard as the real process: `migrate`, `create-user`, then `serve` configured by
environment variables; health, readiness and metrics answer, an ops user signs in,
events published on the bus reach the read models and the pages, and SIGTERM stops it
cleanly."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from stablegate_common.config import BusSettings, DatabaseSettings
from stablegate_common.db import Database
from stablegate_dashboard.app import CONSUMERS
from stablegate_dashboard.chain_heads.models import ChainHeadView
from stablegate_dashboard.intents.models import IntentView
from stablegate_dashboard.transfers.models import TransferView
from tests.dashboard.support import PASSWORD, sign_in
from tests.fixtures.bus import BusFactory, delete_bus_topology, eventually
from tests.reconciler.factories import chain_transfer_event, head_event, intent_event, transfer
from tests.reconciler.processes import free_port, run_command, service_env, serving

MODULE = "stablegate_dashboard.cli"


@pytest.fixture
async def service_queues(bus_settings: BusSettings) -> AsyncIterator[None]:
    """The service's own queues outlive it (quorum queues): delete them afterwards."""
    yield
    await delete_bus_topology(
        bus_settings.url.get_secret_value(),
        exchanges=[],
        queues=[f"{bus_settings.exchange}.dashboard.{name}" for name, _, _ in CONSUMERS],
    )


async def create_user_cli(env: Mapping[str, str], email: str, role: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        MODULE,
        "create-user",
        "--email",
        email,
        "--role",
        role,
        "--password-stdin",
        env=dict(env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(f"{PASSWORD}\n".encode()), 60)
    return process.returncode or 0, out.decode(), err.decode()


@pytest.mark.usefixtures("service_queues")
async def test_the_dashboard_process_serves_and_builds_read_models(
    db_settings: DatabaseSettings,
    bus_settings: BusSettings,
    bus_factory: BusFactory,
    tmp_path: Path,
) -> None:
    env = service_env(db_settings, bus_settings, free_port())
    await run_command(MODULE, "migrate", env)
    code, out, err = await create_user_cli(env, "Ops@Example.com", "admin")
    assert code == 0, err
    created = json.loads(out)
    assert created["email"] == "ops@example.com"
    assert created["role"] == "admin"
    assert created["user_id"].startswith("usr_")
    assert PASSWORD not in out + err
    again = await create_user_cli(env, "ops@example.com", "viewer")
    assert again[0] == 2
    assert "exists already" in again[2]
    publisher = await bus_factory(service="test-gateway")
    db = Database(db_settings)
    intent = intent_event(transfers=[transfer()])
    report = chain_transfer_event("confirmed")
    try:
        async with (
            serving(MODULE, env, tmp_path / "dashboard.log") as served,
            httpx.AsyncClient(base_url=served.url, timeout=5) as http,
        ):
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            ready = (await http.get("/readyz")).json()
            assert ready["checks"] == {"database": "ok", "bus": "ok"}
            metrics = (await http.get("/metrics")).text
            assert 'stablegate_service_info{service="dashboard"' in metrics

            await publisher.publish([intent, report, head_event(head=77)])

            async def arrived() -> bool:
                async with db.sessions() as session:
                    found = [
                        await session.get(IntentView, intent.data["intent_id"]),
                        await session.scalar(select(TransferView)),
                        await session.get(ChainHeadView, "ethereum"),
                    ]
                return all(row is not None for row in found)

            await eventually(arrived, timeout=20)
            assert (await http.get(f"/api/intents/{intent.data['intent_id']}")).status_code == 401
            assert (await sign_in(http, "ops@example.com")).status_code == 303
            page = await http.get(f"/intents/{intent.data['intent_id']}")
            assert page.status_code == 200
            assert intent.data["deposit_address"] in page.text
            api = await http.get(f"/api/intents/{intent.data['intent_id']}")
            assert api.status_code == 200
            assert api.json()["status"] == "paid"

            async def counted() -> bool:
                # Acked (and counted) just after the read model committed.
                metrics = (await http.get("/metrics")).text
                return 'consumer="intents",outcome="acked"' in metrics

            await eventually(counted, timeout=10)
    finally:
        await db.dispose()

    assert served.exit_code == 0
    messages = [line["message"] for line in served.log_lines()]
    assert "service started" in messages
    assert "service stopped" in messages
