"""Schemathesis against the gateway's own OpenAPI document: generated requests (valid and
invalid) to every operation, over real HTTP to the app served by uvicorn on 127.0.0.1
with a real database, must never get a 5xx nor a response that breaks the document
(status, content type, headers, body schema).

The server runs in a thread with its own event loop, which owns the app's connection
pool from migration to disposal. Hypothesis examples are kept few (`MAX_EXAMPLES` per
operation) so the run stays within a minute or two on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from stablegate_common.db import Database
from stablegate_common.migrations import upgrade
from stablegate_gateway.app import create_app
from stablegate_gateway.cli import MIGRATIONS
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.intents.schemas import CREATE_EXAMPLE
from stablegate_gateway.merchants.service import create_merchant
from stablegate_gateway.settings import GatewaySettings
from tests.fixtures.gateway import SettingsFactory

MAX_EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class ServedGateway:
    """The app on a thread of its own; `secret` is a merchant's API key on it."""

    settings: GatewaySettings
    port: int = 0
    secret: str = ""
    ready: threading.Event = field(default_factory=threading.Event)
    failure: BaseException | None = None
    server: uvicorn.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self) -> None:
        try:
            upgrade(MIGRATIONS, self.settings.database)
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the test, which fails with it
            self.failure = exc
            self.ready.set()

    async def _serve(self) -> None:
        db = Database(self.settings.database)
        ctx = GatewayContext(self.settings, self.settings.asset_registry(), db)
        try:
            async with db.transaction() as session:
                created = await create_merchant(session, ctx, name="Schemathesis Shop")
            self.secret = created.secret
            config = uvicorn.Config(
                create_app(ctx), host="127.0.0.1", port=self.port, log_config=None, lifespan="off"
            )
            self.server = uvicorn.Server(config)
            serving = asyncio.create_task(self.server.serve())
            while not self.server.started and not serving.done():
                await asyncio.sleep(0.02)
            self.ready.set()
            await serving
        finally:
            await db.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served_gateway(gateway_settings_factory: SettingsFactory) -> Iterator[ServedGateway]:
    settings = gateway_settings_factory(
        webhook_allow_private_urls=True,  # generated URLs are parsed, never resolved
        rate_limit_enabled=False,
        address_pool_min_free=5,
        address_pool_batch=5,
    )
    gateway = ServedGateway(settings, port=free_port())
    thread = threading.Thread(target=gateway.run, name="schemathesis-gateway", daemon=True)
    thread.start()
    try:
        assert gateway.ready.wait(60), "the gateway did not start"
        if gateway.failure is not None:
            raise gateway.failure
        yield gateway
    finally:
        if gateway.server is not None:
            gateway.server.should_exit = True
        thread.join(30)


def real_objects(gateway: ServedGateway) -> dict[str, str]:
    """One object of each kind, so that valid requests reach real ones, not only 404s."""
    url = gateway.base_url
    headers = {"Authorization": f"Bearer {gateway.secret}"}

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request(method, url + path, json=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    endpoint = call("POST", "/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/hooks"})
    intent = call("POST", "/v1/payment_intents", CREATE_EXAMPLE)
    [delivery] = call("GET", f"/v1/webhook_endpoints/{endpoint['id']}/deliveries")["data"]
    return {
        "endpoint_id": endpoint["id"],
        "intent_id": intent["id"],
        "delivery_id": delivery["id"],
        "event_id": delivery["event"],
    }


def exercise(
    strategy: Any, positive: bool, headers: dict[str, str], objects: dict[str, str]
) -> None:
    """Hypothesis examples drawn from `strategy`; raises on the first failing check."""

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        if positive:
            # Valid requests go to real objects (a deletion would end them for the rest).
            if case.method.upper() != "DELETE":
                for name in case.path_parameters or {}:
                    case.path_parameters[name] = objects.get(name, case.path_parameters[name])
            if case.headers and "Idempotency-Key" in case.headers:
                # A fresh key each time: a key reused with other generated parameters is a
                # correct 409, but it would keep the operation from being exercised.
                case.headers["Idempotency-Key"] = secrets.token_hex(16)
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

    run()


def test_no_generated_request_breaks_the_api(served_gateway: ServedGateway) -> None:
    schema = schemathesis.openapi.from_url(f"{served_gateway.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {served_gateway.secret}"}
    objects = real_objects(served_gateway)
    operations = [r.ok() for r in schema.get_all_operations() if r.ok().path.startswith("/v1/")]
    assert len(operations) >= 15
    failures: list[str] = []
    for operation in operations:
        runs = [
            # The documented examples first: they must work as documented.
            ("examples", st.one_of(operation.get_strategies_from_examples()), True),
            ("positive", operation.as_strategy(GenerationMode.POSITIVE), True),
            ("negative", operation.as_strategy(GenerationMode.NEGATIVE), False),
        ]
        for name, strategy, positive in runs:
            try:
                exercise(strategy, positive, headers, objects)
            except Unsatisfiable:
                assert name == "examples", operation.label  # nothing to take examples from
            except Exception as exc:  # collected: one report names every broken operation
                failures.append(f"{operation.label} [{name}]: {str(exc)[:3000]}")
    assert not failures, "\n\n".join(failures)


def test_the_served_document_is_the_apps(served_gateway: ServedGateway) -> None:
    """The run above saw the real document (this guards the fixture, not the API)."""
    started = time.monotonic()
    document = requests.get(f"{served_gateway.base_url}/openapi.json", timeout=10).json()
    assert time.monotonic() - started < 10
    assert "/v1/webhook_endpoints/{endpoint_id}/roll_secret" in document["paths"]
