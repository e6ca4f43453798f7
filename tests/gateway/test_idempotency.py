"""`Idempotency-Key` on POSTs, over the in-process app on a real PostgreSQL pool: replays,
reuse with another body, concurrent duplicates, what is and is not stored, crashed
claims, the atomicity of writes and stored responses, and the purge."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from stablegate_gateway.api.dependencies import Context, CurrentMerchant
from stablegate_gateway.app import create_app
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.idempotency import repository as keys
from stablegate_gateway.idempotency.models import IdempotencyKey
from stablegate_gateway.idempotency.service import fingerprint, purge_expired
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.merchants.models import Merchant
from stablegate_gateway.settings import GatewaySettings
from tests.fixtures.gateway import ApiMerchant, MerchantFactory, SettingsFactory, intent_body

CONCURRENT = 50


@pytest.fixture
def gateway_settings(gateway_settings_factory: SettingsFactory) -> GatewaySettings:
    settings = gateway_settings_factory(address_pool_min_free=60, address_pool_batch=60)
    settings.database.pool_size = 20
    return settings


def keyed(merchant: ApiMerchant, key: str) -> dict[str, str]:
    return {**merchant.headers, "Idempotency-Key": key}


async def count(ctx: GatewayContext, model: Any, *where: Any) -> int:
    async with ctx.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def stored_key(ctx: GatewayContext, merchant_id: str, key: str) -> IdempotencyKey | None:
    async with ctx.db.sessions() as session:
        return await session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.merchant_id == merchant_id, IdempotencyKey.key == key
            )
        )


async def test_a_retry_with_the_same_key_and_body_replays_the_response(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    key = str(uuid.uuid4())
    first = await api.post("/v1/payment_intents", json=intent_body(), headers=keyed(merchant, key))
    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    # The same parameters written differently are the same request.
    same = json.dumps(dict(reversed(list(intent_body().items()))), indent=2)
    headers = {**keyed(merchant, key), "Content-Type": "application/json"}
    second = await api.post("/v1/payment_intents", content=same, headers=headers)

    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.headers["Request-Id"] != first.headers["Request-Id"]
    assert await count(gateway_ctx, PaymentIntent) == 1
    row = await stored_key(gateway_ctx, merchant.id, key)
    assert row is not None
    assert (row.status, row.response_status, row.lock_token) == ("completed", 200, None)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/payment_intents", intent_body(amount="26.00")),
        ("/v1/payment_intents", {**intent_body(), "reference": "order-2"}),
        ("/v1/webhook_endpoints", {"url": "https://93.184.216.34/hooks"}),
    ],
    ids=["other amount", "extra parameter", "other path"],
)
async def test_the_same_key_with_another_request_is_refused(
    api: httpx.AsyncClient,
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    path: str,
    body: dict[str, Any],
) -> None:
    key = str(uuid.uuid4())
    first = await api.post("/v1/payment_intents", json=intent_body(), headers=keyed(merchant, key))
    assert first.status_code == 200

    reused = await api.post(path, json=body, headers=keyed(merchant, key))
    assert reused.status_code == 409, reused.text
    error = reused.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "idempotency_error",
        "idempotency_key_reused",
        "Idempotency-Key",
    )
    assert error["request_id"] == reused.headers["Request-Id"]
    assert "Idempotent-Replayed" not in reused.headers
    assert await count(gateway_ctx, PaymentIntent) == 1


async def test_keys_belong_to_one_merchant(
    api: httpx.AsyncClient,
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    merchant_factory: MerchantFactory,
) -> None:
    other = await merchant_factory("Other Shop")
    key = "order-1042-create"
    mine = await api.post("/v1/payment_intents", json=intent_body(), headers=keyed(merchant, key))
    theirs = await api.post("/v1/payment_intents", json=intent_body(), headers=keyed(other, key))
    assert mine.status_code == theirs.status_code == 200
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert await count(gateway_ctx, PaymentIntent) == 2


async def test_fifty_concurrent_identical_requests_create_one_intent(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    key = str(uuid.uuid4())
    body = intent_body(reference="order-race")

    responses = await asyncio.gather(
        *(
            api.post("/v1/payment_intents", json=body, headers=keyed(merchant, key))
            for _ in range(CONCURRENT)
        )
    )

    assert await count(gateway_ctx, PaymentIntent) == 1
    originals = [
        r for r in responses if r.status_code == 200 and "Idempotent-Replayed" not in r.headers
    ]
    replays = [r for r in responses if r.headers.get("Idempotent-Replayed") == "true"]
    in_use = [r for r in responses if r.status_code == 409]
    assert len(originals) == 1, [r.text for r in responses if r.status_code != 409]
    assert len(originals) + len(replays) + len(in_use) == CONCURRENT
    assert all(r.status_code == 200 and r.content == originals[0].content for r in replays)
    assert {r.json()["error"]["code"] for r in in_use} <= {"idempotency_key_in_use"}
    assert all(r.json()["error"]["type"] == "idempotency_error" for r in in_use)
    # Retrying after the race settles always gets the one intent back.
    again = await api.post("/v1/payment_intents", json=body, headers=keyed(merchant, key))
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == originals[0].json()["id"]


async def test_a_request_refused_before_it_began_leaves_the_key_free(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    key = str(uuid.uuid4())
    invalid = await api.post(
        "/v1/payment_intents", json=intent_body(amount="-1"), headers=keyed(merchant, key)
    )
    unauthenticated = await api.post(
        "/v1/payment_intents", json=intent_body(), headers={"Idempotency-Key": key}
    )
    assert (invalid.status_code, unauthenticated.status_code) == (400, 401)
    assert await stored_key(gateway_ctx, merchant.id, key) is None

    # Fixed, the same key runs the request: validation errors are not stored (Stripe's rule).
    fixed = await api.post("/v1/payment_intents", json=intent_body(), headers=keyed(merchant, key))
    assert fixed.status_code == 200
    assert "Idempotent-Replayed" not in fixed.headers


async def test_an_answer_given_once_the_handler_began_is_stored_even_when_4xx(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    created = (
        await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    ).json()
    key = str(uuid.uuid4())
    path = f"/v1/payment_intents/{created['id']}/cancel"
    first = await api.post(path, headers=keyed(merchant, key))
    assert first.status_code == 200
    assert first.json()["status"] == "canceled"

    # A second cancel with a new key is refused by the state machine, and that refusal
    # is what its key replays afterwards.
    refused_key = str(uuid.uuid4())
    refused = await api.post(path, headers=keyed(merchant, refused_key))
    assert refused.status_code == 409
    replayed = await api.post(path, headers=keyed(merchant, refused_key))
    assert (replayed.status_code, replayed.headers["Idempotent-Replayed"]) == (409, "true")
    assert replayed.content == refused.content


@pytest.mark.parametrize("key", [b"", b"tab\tinside", b"x" * 256, "naïve".encode()])
async def test_a_malformed_key_is_refused(
    api: httpx.AsyncClient, merchant: ApiMerchant, key: bytes
) -> None:
    headers = [*merchant.headers.items(), ("Idempotency-Key", key)]
    response = await api.post("/v1/payment_intents", json=intent_body(), headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("idempotency_key_invalid", "Idempotency-Key")
    assert error["request_id"] == response.headers["Request-Id"]


async def test_the_key_is_ignored_on_reads(api: httpx.AsyncClient, merchant: ApiMerchant) -> None:
    for _ in range(2):
        response = await api.get("/v1/payment_intents", headers=keyed(merchant, "k"))
        assert response.status_code == 200
        assert "Idempotent-Replayed" not in response.headers


# -- claims that were never completed ----------------------------------------------------------


async def plant_claim(
    ctx: GatewayContext, merchant_id: str, key: str, body: dict[str, Any], *, expired: bool
) -> None:
    raw = json.dumps(body).encode()
    async with ctx.db.transaction() as session:
        await keys.claim(
            session,
            merchant_id,
            key,
            fingerprint("POST", "/v1/payment_intents", "", raw),
            "dead-holder",
            timedelta(seconds=-5 if expired else 60),
        )


async def test_a_live_claim_answers_in_use_and_an_expired_one_is_taken_over(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    live, dead = "held-by-a-running-request", "held-by-a-crashed-request"
    await plant_claim(gateway_ctx, merchant.id, live, intent_body(), expired=False)
    await plant_claim(gateway_ctx, merchant.id, dead, intent_body(), expired=True)

    busy = await api.post("/v1/payment_intents", json=intent_body(), headers=keyed(merchant, live))
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "idempotency_key_in_use"
    assert await count(gateway_ctx, PaymentIntent) == 0

    taken = await api.post("/v1/payment_intents", json=intent_body(), headers=keyed(merchant, dead))
    assert taken.status_code == 200, taken.text
    assert "Idempotent-Replayed" not in taken.headers
    row = await stored_key(gateway_ctx, merchant.id, dead)
    assert row is not None
    assert row.status == "completed"
    # An expired claim with another body is still another request.
    await plant_claim(gateway_ctx, merchant.id, "crashed-2", intent_body(), expired=True)
    other = await api.post(
        "/v1/payment_intents", json=intent_body(amount="1.00"), headers=keyed(merchant, "crashed-2")
    )
    assert other.json()["error"]["code"] == "idempotency_key_reused"


# -- atomicity: writes and the stored response commit together ---------------------------------


@pytest.fixture
async def probe_api(
    gateway_ctx: GatewayContext,
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """The app plus a route that writes (renames the merchant) and then answers as told."""
    app = create_app(gateway_ctx)

    @app.post("/v1/test_probe/{outcome}")
    async def probe(ctx: Context, principal: CurrentMerchant, outcome: str) -> dict[str, str]:
        async with ctx.db.transaction() as session:
            merchant = await session.get(Merchant, principal.merchant_id)
            assert merchant is not None
            merchant.name = f"renamed by {outcome}"
            await session.flush()
        if outcome == "crash":
            raise RuntimeError("the handler failed after writing")
        return {"name": merchant.name}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        yield client, app


async def merchant_name(ctx: GatewayContext, merchant_id: str) -> str:
    async with ctx.db.sessions() as session:
        merchant = await session.get(Merchant, merchant_id)
    assert merchant is not None
    return merchant.name


async def test_a_failure_after_writing_rolls_back_and_frees_the_key(
    probe_api: tuple[httpx.AsyncClient, FastAPI], gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    client, _ = probe_api
    failed = await client.post("/v1/test_probe/crash", headers=keyed(merchant, "k1"))
    assert failed.status_code == 500
    assert failed.json()["error"]["type"] == "api_error"
    assert failed.headers["Request-Id"].startswith("req_")
    assert await merchant_name(gateway_ctx, merchant.id) == "Acme Shop"
    assert await stored_key(gateway_ctx, merchant.id, "k1") is None


async def test_writes_never_commit_without_their_stored_response(
    probe_api: tuple[httpx.AsyncClient, FastAPI],
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, _ = probe_api

    async def storage_fails(*args: Any, **kwargs: Any) -> bool:
        raise OSError("connection lost while storing the response")

    with monkeypatch.context() as patched:
        patched.setattr(keys, "complete", storage_fails)
        lost = await client.post("/v1/test_probe/ok", headers=keyed(merchant, "k2"))
    assert lost.status_code == 500
    assert await merchant_name(gateway_ctx, merchant.id) == "Acme Shop"  # rolled back with it
    assert await stored_key(gateway_ctx, merchant.id, "k2") is None

    done = await client.post("/v1/test_probe/ok", headers=keyed(merchant, "k2"))
    assert (done.status_code, done.json()) == (200, {"name": "renamed by ok"})
    assert await merchant_name(gateway_ctx, merchant.id) == "renamed by ok"


async def test_a_claim_lost_to_a_retry_commits_nothing(
    probe_api: tuple[httpx.AsyncClient, FastAPI],
    gateway_ctx: GatewayContext,
    merchant: ApiMerchant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request that outlived its lease, while a retry took the key over, must not
    commit its writes too: only one of the two executions may count."""
    client, _ = probe_api
    original = keys.complete

    async def retry_took_over_meanwhile(
        session: Any, merchant_id: str, key: str, *a: Any, **kw: Any
    ) -> bool:
        async with gateway_ctx.db.transaction() as other:
            await other.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == key)
                .values(lock_token="the-retry")
            )
        return await original(session, merchant_id, key, *a, **kw)

    with monkeypatch.context() as patched:
        patched.setattr(keys, "complete", retry_took_over_meanwhile)
        late = await client.post("/v1/test_probe/ok", headers=keyed(merchant, "k3"))
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "idempotency_key_in_use"
    assert await merchant_name(gateway_ctx, merchant.id) == "Acme Shop"


# -- the purge -----------------------------------------------------------------------------------


async def test_purge_removes_old_keys_but_not_a_live_claim(
    gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    now = datetime.now(UTC)
    async with gateway_ctx.db.transaction() as session:
        for key, age_hours, live in (("old", 25, False), ("old-live", 25, True), ("new", 1, False)):
            await keys.claim(session, merchant.id, key, "f" * 64, "t", timedelta(seconds=60))
            await session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == key)
                .values(
                    created_at=now - timedelta(hours=age_hours),
                    status="in_progress" if live else "completed",
                    locked_until=now + timedelta(seconds=60) if live else None,
                )
            )
    async with gateway_ctx.db.transaction() as session:
        assert await purge_expired(session, now - timedelta(hours=24)) == 1
    async with gateway_ctx.db.sessions() as session:
        left = set((await session.scalars(select(IdempotencyKey.key))).all())
    assert left == {"old-live", "new"}


async def test_a_purged_key_runs_again(
    api: httpx.AsyncClient, gateway_ctx: GatewayContext, merchant: ApiMerchant
) -> None:
    first = await api.post("/v1/payment_intents", json=intent_body(), headers=keyed(merchant, "k"))
    async with gateway_ctx.db.transaction() as session:
        assert await purge_expired(session, datetime.now(UTC) + timedelta(seconds=1)) == 1
    second = await api.post("/v1/payment_intents", json=intent_body(), headers=keyed(merchant, "k"))
    assert "Idempotent-Replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
