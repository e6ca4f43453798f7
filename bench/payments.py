"""The whole suite paying real intents on a local chain: what benchmarks 3 and 4 share.

`payment_stack()` starts anvil with the devnet's tokens, the four services as processes
(gateway, Ethereum watcher, reconciler, dashboard; `scripts/suite.py`), a webhook receiver
in this process with an endpoint registered for `events`, and a funded customer account
anvil signs for. Confirmations and the watcher's poll interval are the devnet's
(`devnet/devnet.py`, `scripts/suite.py`), unless `env` says otherwise.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from bench.chain import BenchChain, bench_chain, random_address
from bench.stack import BenchSuite, WebhookReceiver, running_suite, webhook_receiver

SERVICES = ("gateway", "watcher-eth", "reconciler", "dashboard")


@dataclass
class PaymentStack:
    chain: BenchChain
    suite: BenchSuite
    receiver: WebhookReceiver
    customer: str  # pays the intents

    def setting(self, service: str, variable: str) -> str | None:
        spec = self.suite.suite.spec(service)
        value = self.suite.suite.env_for(spec).get(variable)
        return None if value is None else str(value)


@contextlib.asynccontextmanager
async def payment_stack(
    name: str,
    work_dir: Path,
    *,
    events: Sequence[str],
    env: Mapping[str, Mapping[str, str]] | None = None,
) -> AsyncIterator[PaymentStack]:
    async with (
        bench_chain(work_dir) as chain,
        running_suite(
            name,
            services=SERVICES,
            rpc_url=chain.rpc_url,
            assets_file=chain.assets_file,
            env=env,
            log_dir=work_dir,
        ) as suite,
        webhook_receiver() as receiver,
    ):
        async with suite.api() as api:
            response = await api.post(
                "/v1/webhook_endpoints", json={"url": receiver.url, "enabled_events": list(events)}
            )
            response.raise_for_status()
        customer = random_address()
        await chain.fund(customer, whole_tokens=10**9)
        yield PaymentStack(chain, suite, receiver, customer)


def random_amount(rng: random.Random) -> str:
    """A price between 1.00 and 99.99, as a merchant sends it."""
    return str(Decimal(rng.randint(100, 9_999)) / 100)


async def create_intent(api: httpx.AsyncClient, amount: str) -> dict[str, Any]:
    response = await api.post(
        "/v1/payment_intents",
        json={"amount": amount, "currency": "USDT", "network": "ethereum"},
    )
    response.raise_for_status()
    intent: dict[str, Any] = response.json()
    return intent
