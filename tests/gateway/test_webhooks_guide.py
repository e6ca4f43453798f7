"""The merchant guide's promises: its `verify_webhook` (docs/examples/verify_webhook.py,
printed verbatim in docs/merchant-guide.md) accepts real deliveries from the gateway and
refuses forged, altered or stale ones; its retry table is the configured schedule."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from stablegate_gateway.settings import GatewayConfig, GatewaySettings
from stablegate_gateway.webhooks.delivery import WebhookDeliveryWorker, retry_schedule
from tests.fixtures.gateway import ApiMerchant, SettingsFactory, intent_body
from tests.fixtures.payments import Receiver, fast_webhook_settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDE = DOCS / "merchant-guide.md"
EXAMPLE = DOCS / "examples" / "verify_webhook.py"

Verify = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def verify_webhook() -> Verify:
    spec = importlib.util.spec_from_file_location("verify_webhook_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: Verify = module.verify_webhook
    return function


@pytest.fixture
def gateway_settings(gateway_settings_factory: SettingsFactory) -> GatewaySettings:
    return fast_webhook_settings(gateway_settings_factory)


def test_the_guide_prints_the_tested_function_verbatim() -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    [shown] = [b for b in blocks if "def verify_webhook(" in b]
    source = EXAMPLE.read_text()
    code = source[source.index("import hashlib") :]
    assert shown.strip() == code.strip()


def test_the_guides_retry_table_is_the_default_schedule() -> None:
    rows = re.findall(r"^\| (\d+)(?: \(last\))? \| ([^|]+) \|$", GUIDE.read_text(), re.MULTILINE)
    schedule = retry_schedule(GatewayConfig())
    assert [int(n) for n, _ in rows] == list(range(1, len(schedule) + 2))
    assert [when.strip() for _, when in rows] == ["at once", *map(_human, schedule)]


def _human(seconds: float) -> str:
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


async def test_real_deliveries_verify_and_forgeries_do_not(
    api: httpx.AsyncClient,
    merchant: ApiMerchant,
    webhook_receiver: Receiver,
    delivery_worker: WebhookDeliveryWorker,
    verify_webhook: Verify,
) -> None:
    created = await api.post(
        "/v1/webhook_endpoints", json={"url": webhook_receiver.url}, headers=merchant.headers
    )
    endpoint = created.json()
    await api.post("/v1/payment_intents", json=intent_body(), headers=merchant.headers)
    rolled = await api.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/roll_secret",
        json={"expires_in": 600},
        headers=merchant.headers,
    )
    await api.post(f"/v1/webhook_endpoints/{endpoint['id']}/test", headers=merchant.headers)
    assert await delivery_worker.deliver_due() == 2

    plain, during_roll = sorted(
        webhook_receiver.requests, key=lambda r: r.headers["Stablegate-Signature"].count("v1=")
    )
    header = plain.headers["Stablegate-Signature"]
    event = verify_webhook(plain.body, header, endpoint["secret"])
    stored = await api.get(f"/v1/events/{event['id']}", headers=merchant.headers)
    assert event == stored.json()
    assert event["type"] == "payment_intent.created"

    roll_header = during_roll.headers["Stablegate-Signature"]
    for secret in (endpoint["secret"], rolled.json()["secret"]):
        assert verify_webhook(during_roll.body, roll_header, secret)["type"] == (
            "webhook_endpoint.test"
        )

    timestamp = int(header.split(",")[0].removeprefix("t="))
    forged = [
        (plain.body, header, "whsec_" + "0" * 64, {}),  # another secret
        (plain.body.replace(b'"25.00"', b'"2.50"'), header, endpoint["secret"], {}),
        (json.dumps(json.loads(plain.body)).encode(), header, endpoint["secret"], {}),
        (plain.body, header, endpoint["secret"], {"now": timestamp + 301}),  # replayed later
        (plain.body, "v1=" + header.split("v1=")[1], endpoint["secret"], {}),  # no t=
        (plain.body, "", endpoint["secret"], {}),
    ]
    for body, forged_header, secret, kwargs in forged:
        with pytest.raises(ValueError):  # noqa: PT011 - the guide's contract is ValueError
            verify_webhook(body, forged_header, secret, **kwargs)
