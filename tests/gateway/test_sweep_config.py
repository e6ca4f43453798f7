"""Sweep settings (GATEWAY_SWEEP_*), the sweep schedule, and plan_sweeps' refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from pydantic import ValidationError

from stablegate_common.core.assets import Asset
from stablegate_common.scheduling import Scheduler
from stablegate_gateway.context import SERVICE, GatewayContext
from stablegate_gateway.outgoing.sweep_config import SweepSettings
from stablegate_gateway.outgoing.sweeps import (
    SWEEP_JOB,
    SweepsNotConfigured,
    plan_sweeps,
    register_sweep_job,
)


def test_defaults() -> None:
    settings = SweepSettings()
    assert settings.sweep_min_amount == Decimal(10)
    assert settings.sweep_max_fee_share == Decimal("0.05")
    assert settings.sweep_gas_margin == Decimal("1.25")
    assert settings.sweep_tron_delegation == "auto"
    assert settings.schedule_seconds is None  # 0 minutes: no schedule


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_SWEEP_MIN_AMOUNTS", '{"bsc:USDT": "50.5"}')
    monkeypatch.setenv("GATEWAY_NATIVE_PRICES_USD", '{"eth": "3000.10"}')
    monkeypatch.setenv("GATEWAY_SWEEP_SCHEDULE_MINUTES", "15")
    monkeypatch.setenv("GATEWAY_SWEEP_TRON_DELEGATION", "never")
    monkeypatch.setenv("GATEWAY_RPC_URL_BSC", " http://bsc.node ")
    settings = SweepSettings()
    bsc_usdt = Asset("bsc", "USDT", "0x55d398326f99059ff775485246999027b3197955", 18)
    eth_usdt = Asset("ethereum", "USDT", "0xdac17f958d2ee523a2206206994597c13d831ec7", 6)
    assert settings.min_base_units(bsc_usdt) == 505 * 10**17
    assert settings.min_base_units(eth_usdt) == 10 * 10**6  # the default
    assert settings.native_price("ETH") == Decimal("3000.10")
    assert settings.native_price("BNB") is None
    assert settings.schedule_seconds == 900.0
    assert settings.sweep_tron_delegation == "never"
    assert settings.node_url("bsc") == "http://bsc.node"


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("GATEWAY_SWEEP_MIN_AMOUNTS", '{"ethereum:usdt": "5"}', "network:ASSET"),
        ("GATEWAY_SWEEP_MIN_AMOUNTS", '{"solana:USDT": "5"}', "network:ASSET"),
        ("GATEWAY_SWEEP_MIN_AMOUNTS", '{"ethereum:USDT": 5.5}', "not JSON numbers"),
        ("GATEWAY_SWEEP_MIN_AMOUNT", "-1", "sweep_min_amount"),
        ("GATEWAY_SWEEP_MAX_FEE_SHARE", "0", "sweep_max_fee_share"),
        ("GATEWAY_SWEEP_MAX_FEE_SHARE", "1.5", "sweep_max_fee_share"),
        ("GATEWAY_SWEEP_GAS_MARGIN", "0.9", "sweep_gas_margin"),
        ("GATEWAY_SWEEP_GAS_MARGIN", "NaN", "sweep_gas_margin"),
        ("GATEWAY_SWEEP_SCHEDULE_MINUTES", "-5", "sweep_schedule_minutes"),
        ("GATEWAY_SWEEP_TRON_DELEGATION", "always", "sweep_tron_delegation"),
        ("GATEWAY_NATIVE_PRICES_USD", '{"ETH": "0"}', "native_prices_usd"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError, match=message):
        SweepSettings()


def _with_sweeps(ctx: GatewayContext, **sweeps: object) -> GatewayContext:
    settings = ctx.settings.model_copy(update={"sweeps": SweepSettings(**sweeps)})  # type: ignore[arg-type]
    return GatewayContext(settings, ctx.registry, ctx.db)


@pytest.fixture
async def scheduler(gateway_ctx: GatewayContext) -> AsyncIterator[Scheduler]:
    jobs = Scheduler(gateway_ctx.settings.database, gateway_ctx.db, service=SERVICE)
    try:
        yield jobs
    finally:
        await jobs.shutdown()


async def test_no_schedule_at_zero_minutes(
    gateway_ctx: GatewayContext, scheduler: Scheduler
) -> None:
    assert register_sweep_job(scheduler, _with_sweeps(gateway_ctx)) is False
    with pytest.raises(LookupError):
        await scheduler.run_now(SWEEP_JOB)


async def test_the_scheduled_job_runs_under_the_scheduler_lock(
    gateway_ctx: GatewayContext, scheduler: Scheduler
) -> None:
    ctx = _with_sweeps(gateway_ctx, sweep_schedule_minutes=30)
    assert register_sweep_job(scheduler, ctx) is True
    # No network has a treasury here: the job plans nothing and succeeds.
    assert await scheduler.run_now(SWEEP_JOB) == "success"
    assert scheduler.lock_key(SWEEP_JOB).endswith(f":{SWEEP_JOB}")


async def test_a_named_network_without_configuration_is_refused(
    gateway_ctx: GatewayContext,
) -> None:
    async with gateway_ctx.db.transaction() as session:
        with pytest.raises(SweepsNotConfigured, match="GATEWAY_TREASURY_ADDRESS_TRON"):
            await plan_sweeps(session, gateway_ctx, "tron", "test")
        # Every network at once (the schedule): the unconfigured ones are passed over.
        assert await plan_sweeps(session, gateway_ctx, None, "test") == []
