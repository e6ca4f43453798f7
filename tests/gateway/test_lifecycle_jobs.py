"""Lifecycle jobs and operator commands on a migrated schema: housekeeping (Idempotency-Key
responses after 24 h, bus inbox claims after their retention; its run under the
scheduler is in test_payments_jobs.py), expiry of a misdirected intent, and the CLI that
sets a merchant's default underpayment tolerance."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update

from stablegate_common.bus import InboxMessage
from stablegate_gateway.addresses.jobs import release_cooled_addresses
from stablegate_gateway.addresses.models import DepositAddress
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.housekeeping import prune_consumed_events, purge_idempotency_keys
from stablegate_gateway.idempotency.models import COMPLETED, IN_PROGRESS, IdempotencyKey
from stablegate_gateway.intents.jobs import expire_due_intents
from stablegate_gateway.merchants.models import Merchant
from tests.conftest import DATABASE_URL
from tests.fixtures.gateway import ApiMerchant
from tests.fixtures.payments import USDC_ETHEREUM, ChainTx, create_intent, load_intent, rows

USDT = 1_000_000
Feed = Any


async def add_key(
    ctx: GatewayContext, merchant_id: str, key: str, *, age: timedelta, status: str
) -> datetime:
    """An Idempotency-Key row created `age` ago; returns the time it was measured from."""
    now = datetime.now(UTC)
    locked = now + timedelta(minutes=10) if status == IN_PROGRESS else None
    async with ctx.db.transaction() as session:
        await session.execute(
            insert(IdempotencyKey).values(
                merchant_id=merchant_id,
                key=key,
                fingerprint="f" * 64,
                status=status,
                locked_until=locked,
                created_at=now - age,
            )
        )
    return now


async def test_idempotency_keys_are_purged_after_their_retention(
    gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    day = timedelta(seconds=gateway_ctx.settings.gateway.idempotency_retention_seconds)
    minute = timedelta(minutes=1)
    now = await add_key(gateway_ctx, merchant.id, "old", age=day + minute, status=COMPLETED)
    await add_key(gateway_ctx, merchant.id, "young", age=day - minute, status=COMPLETED)
    # Old but still held by a request in flight: left alone until its claim runs out.
    await add_key(gateway_ctx, merchant.id, "held", age=day * 2, status=IN_PROGRESS)

    assert await purge_idempotency_keys(gateway_ctx, now=now) == 1
    left = await rows(gateway_ctx, IdempotencyKey, order_by=IdempotencyKey.key)
    assert [k.key for k in left] == ["held", "young"]


async def test_inbox_claims_are_pruned_after_their_retention(gateway_ctx: GatewayContext) -> None:
    retention = timedelta(seconds=gateway_ctx.settings.gateway.inbox_retention_seconds)
    now = datetime.now(UTC)
    async with gateway_ctx.db.transaction() as session:
        await session.execute(
            insert(InboxMessage),
            [
                {"consumer": "transfers", "event_id": "old", "processed_at": now - retention * 2},
                {"consumer": "transfers", "event_id": "new", "processed_at": now},
            ],
        )
    assert await prune_consumed_events(gateway_ctx) == 1
    assert [m.event_id for m in await rows(gateway_ctx, InboxMessage)] == ["new"]


async def test_expiry_leaves_misdirected_intents_flagged_and_records_the_expiry(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    flagged = await create_intent(gateway_ctx, merchant.id, expires_in=60)
    usdc = ChainTx(flagged.deposit_address, 5 * USDT, token_contract=USDC_ETHEREUM)
    await transfer_feed(usdc.event("confirmed", 1))
    assert (await load_intent(gateway_ctx, flagged.id)).expired_at is None  # not expired yet

    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await expire_due_intents(gateway_ctx, now=later) == 0  # nothing to expire there
    async with gateway_ctx.db.transaction() as session:
        await session.execute(
            update(type(flagged))
            .where(type(flagged).id == flagged.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    # The wrong-asset transfer is reorged away after the expiry: the intent is just expired.
    await transfer_feed(usdc.event("reverted", 2))
    after = await load_intent(gateway_ctx, flagged.id)
    assert (after.status, after.exception) == ("expired", None)
    assert after.expired_at is not None


async def test_an_address_that_ended_early_cools_from_the_expiry(
    gateway_ctx: GatewayContext, merchant: ApiMerchant, transfer_feed: Feed
) -> None:
    """Flagged (or paid) before its expiry, the intent's customer may still pay until
    then: the address is not released before expiry + cool-down."""
    intent = await create_intent(gateway_ctx, merchant.id, expires_in=7200)
    usdc = ChainTx(intent.deposit_address, 5 * USDT, token_contract=USDC_ETHEREUM)
    await transfer_feed(usdc.event("confirmed", 1))

    cooldown = timedelta(seconds=gateway_ctx.settings.gateway.address_cooldown_seconds)
    [address] = await rows(
        gateway_ctx, DepositAddress, DepositAddress.id == intent.deposit_address_id
    )
    assert (address.status, address.cooling_until) == ("cooling", intent.expires_at + cooldown)
    just_before = intent.expires_at + cooldown - timedelta(seconds=1)
    assert await release_cooled_addresses(gateway_ctx, now=just_before) == 0
    assert await release_cooled_addresses(gateway_ctx, now=just_before + timedelta(seconds=2)) == 1


# -- the operator's command -------------------------------------------------------------------


def gateway_cli(*args: str, schema: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": DATABASE_URL, "DATABASE_SCHEMA": schema}
    binary = Path(sys.executable).parent / "stablegate-gateway"
    return subprocess.run(
        [str(binary), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def test_set_underpayment_tolerance_from_the_command_line(
    gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    schema = gateway_ctx.settings.database.schema_name
    assert schema is not None
    done = await asyncio.to_thread(
        gateway_cli,
        "set-underpayment-tolerance",
        "--merchant",
        merchant.id,
        "--percent",
        "0.5",
        "--amount",
        "1.25",
        schema=schema,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "merchant_id": merchant.id,
        "underpayment_tolerance": {"percent": "0.5", "amount": "1.25"},
    }
    [stored] = await rows(gateway_ctx, Merchant, Merchant.id == merchant.id)
    assert (stored.underpayment_tolerance_percent, stored.underpayment_tolerance_amount) == (
        Decimal("0.5"),
        Decimal("1.25"),
    )
    intent = await create_intent(gateway_ctx, merchant.id, amount="1000.00")
    assert intent.underpayment_tolerance_base_units == 1_250_000

    refused = await asyncio.to_thread(
        gateway_cli,
        "set-underpayment-tolerance",
        "--merchant",
        merchant.id,
        "--percent",
        "100",
        schema=schema,
    )
    assert refused.returncode == 2
    assert "percent must be below 100" in refused.stderr
