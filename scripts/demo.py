"""Simulated customer payments against a running `make run` suite, so the dashboard has
something to show: exact payments on every network, a partial payment, an overpayment, a
late payment (sent after the intent expired) and an intent nobody pays.

    make demo      (.venv/bin/python scripts/demo.py [--expires-in 60] [--timeout 300])

It reads the gateway's address and the demo merchant's secret key from .state/demo.json
(which `make run` writes), creates the intents through the public API like a merchant's
backend, and pays them on the devnets with `devnet/devnet.py pay` like a customer's
wallet. It waits until every intent reaches the status its story ends in, printing each
change, and exits non-zero if one does not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEMO_STATE = ROOT / ".state" / "demo.json"
DEVNET = [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "devnet" / "devnet.py")]


class DemoError(Exception):
    """The suite is not there or refused a step; the message says what to do."""


@dataclass
class Story:
    """One customer: what the merchant asks for, what the customer sends, how it ends."""

    label: str
    network: str
    asset: str
    amount: str
    pays: Decimal | None  # share of the amount due the customer sends; None: never pays
    ends_in: str  # the intent status that ends the story
    late: bool = False  # pays only once the intent has expired
    intent: dict[str, Any] = field(default_factory=dict)
    paid: bool = False


def stories(networks: set[str]) -> list[Story]:
    every = [
        Story("late payment", "ethereum", "USDC", "30.00", Decimal(1), "requires_action", True),
        Story("never paid", "ethereum", "USDT", "5.00", None, "expired"),
        Story("exact", "ethereum", "USDT", "25.00", Decimal(1), "paid"),
        Story("exact", "bsc", "USDC", "40.00", Decimal(1), "paid"),
        Story("exact", "tron", "USDT", "15.00", Decimal(1), "paid"),
        Story("partial (60%)", "ethereum", "USDT", "100.00", Decimal("0.6"), "partially_paid"),
        Story("overpaid (125%)", "bsc", "USDT", "10.00", Decimal("1.25"), "paid"),
    ]
    return [story for story in every if story.network in networks]


class Gateway:
    def __init__(self, api: str, secret_key: str) -> None:
        headers = {"Authorization": f"Bearer {secret_key}"}
        self._http = httpx.Client(base_url=api, headers=headers, timeout=10.0)

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        # A fresh Idempotency-Key per call: a retried demo step is a new intent.
        headers = {"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else {}
        try:
            response = self._http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DemoError(f"the gateway does not answer ({exc}); is `make run` running?") from exc
        if response.status_code >= 400:
            error = response.json().get("error", {}) if response.content else {}
            raise DemoError(f"{method} {path}: {response.status_code} {error.get('message')}")
        return response.json()


def load_state(path: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DemoError(f"{path} is missing: start the suite with `make run` first") from exc
    return state


def create(gateway: Gateway, story: Story, expires_in: int) -> None:
    body: dict[str, Any] = {
        "amount": story.amount,
        "currency": story.asset,
        "network": story.network,
        "reference": f"demo-{uuid.uuid4().hex[:8]}",
        "description": f"Demo: {story.label} on {story.network}",
        "metadata": {"demo": story.label},
    }
    if story.late or story.pays is None:
        body["expires_in"] = expires_in
    story.intent = gateway.call("POST", "/v1/payment_intents", body)


def pay(story: Story) -> None:
    """Send the story's share of the amount due to the deposit address, from dev account 1."""
    assert story.pays is not None
    due = Decimal(story.intent["amount_remaining"])
    quantum = Decimal(1).scaleb(-int(story.intent["decimals"]))
    amount = f"{(due * story.pays).quantize(quantum).normalize():f}"
    command = [*DEVNET, "pay", "--network", story.network, "--asset", story.asset]
    command += ["--to", story.intent["deposit_address"], "--amount", amount]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        raise DemoError(f"paying {story.intent['id']} failed: {result.stderr.strip()}")
    story.paid = True
    print(f"  sent {amount} {story.asset} on {story.network} to {story.intent['deposit_address']}")


def follow(gateway: Gateway, all_stories: list[Story], timeout: float) -> bool:
    """Poll every intent, pay the late ones once expired; True when every story ended."""
    deadline = time.monotonic() + timeout
    pending = list(all_stories)
    while pending and time.monotonic() < deadline:
        time.sleep(2)
        for story in list(pending):
            before = story.intent["status"]
            story.intent = gateway.call("GET", f"/v1/payment_intents/{story.intent['id']}")
            status = story.intent["status"]
            if status != before:
                exception = story.intent.get("exception")
                print(
                    f"{story.intent['id']} ({story.label}): {before} -> {status}"
                    + (f" ({exception})" if exception else "")
                )
            if story.late and not story.paid and status == "expired":
                pay(story)
            elif status == story.ends_in and (not story.late or story.paid):
                pending.remove(story)
    for story in pending:
        print(
            f"{story.intent['id']} ({story.label}) is still {story.intent['status']}, "
            f"expected {story.ends_in}",
            file=sys.stderr,
        )
    return not pending


def summary(all_stories: list[Story], state: dict[str, Any]) -> None:
    print(
        f"\n{'intent':<32} {'story':<16} {'network':<9} {'status':<16} "
        f"{'exception':<10} {'amount':>8} {'received':>10}"
    )
    for story in all_stories:
        intent = story.intent
        print(
            f"{intent['id']:<32} {story.label:<16} {story.network:<9} {intent['status']:<16} "
            f"{intent.get('exception') or '':<10} {intent['amount']:>8} "
            f"{intent['amount_received']:>10}"
        )
    print(f"\nSee them on the dashboard: {state.get('dashboard', '(see make run)')}")


def run(args: argparse.Namespace) -> int:
    state = load_state(args.state)
    gateway = Gateway(state["api"], state["secret_key"])
    try:
        networks = {n["id"] for n in gateway.call("GET", "/v1/networks")["data"]}
        all_stories = stories(networks)
        for story in all_stories:  # the expiring ones first: their clock starts now
            create(gateway, story, args.expires_in)
            print(
                f"created {story.intent['id']}: {story.label}, {story.amount} {story.asset} "
                f"on {story.network} (checkout {story.intent['checkout_url']})"
            )
        for story in all_stories:
            if story.pays is not None and not story.late:
                pay(story)
        late = [s for s in all_stories if s.late or s.pays is None]
        if late:
            print(f"waiting for {len(late)} intents to expire (about {args.expires_in} s)…")
        done = follow(gateway, all_stories, args.timeout)
        summary(all_stories, state)
    finally:
        gateway.close()
    return 0 if done else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, default=DEMO_STATE, help=argparse.SUPPRESS)
    parser.add_argument(
        "--expires-in", type=int, default=60, help="seconds the late and unpaid intents live"
    )
    parser.add_argument("--timeout", type=float, default=300, help="give up after this long")
    try:
        return run(parser.parse_args(argv))
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
