"""Assembly of a watcher service, shared by every chain: a watcher package supplies its
network name, schema, migrations folder and how to build its chain client, and gets a
`main()` with `migrate` and `serve`.

`serve` runs in one process: the HTTP app (`/healthz`, `/readyz`, `/metrics`), the
watch-set consumer, the outbox relay and the scanning loop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from stablegate_common import migrations
from stablegate_common.bus import OUTBOX_WRITTEN, Bus, OutboxRelay, idempotent
from stablegate_common.chains import ChainClient
from stablegate_common.config import ConfigurationError, load_settings
from stablegate_common.core.errors import UnknownNetwork
from stablegate_common.db import Database
from stablegate_common.http.health import Health
from stablegate_common.lifecycle import ServiceRunner
from stablegate_common.logging import configure_logging
from stablegate_common.metrics import service_info
from stablegate_common.watcher.config import WatcherServiceSettings, WatcherSettings
from stablegate_common.watcher.engine import WatcherEngine
from stablegate_common.watcher.runner import ScannerLoop
from stablegate_common.watcher.watchset import CONSUMER, ROUTING_KEYS, WatchSetConsumer

log = logging.getLogger(__name__)

ClientFactory = Callable[[WatcherSettings], ChainClient]


@dataclass(frozen=True)
class WatcherSpec:
    """What distinguishes one watcher service from another."""

    service: str  # e.g. "chain-watcher-eth": queue names, logs, producer of events
    network: str  # asset registry name, e.g. "ethereum"
    default_schema: str  # e.g. "watcher_ethereum"
    migrations: Path  # the service's alembic folder
    settings_cls: type[WatcherServiceSettings]
    client_factory: ClientFactory
    version: str = "0.1.0"


@dataclass
class WatcherService:
    """The assembled parts, exposed for tests and for the runner."""

    runner: ServiceRunner
    db: Database
    bus: Bus
    relay: OutboxRelay
    engine: WatcherEngine
    loop: ScannerLoop
    app: FastAPI


def build_service(spec: WatcherSpec, settings: WatcherServiceSettings) -> WatcherService:
    registry = settings.asset_registry()
    try:
        network = registry.network(spec.network)
    except UnknownNetwork as exc:
        raise ConfigurationError(f"STABLEGATE_ASSETS_FILE: {exc.message}") from exc
    config = settings.watcher.engine_config(network)
    settings.watcher.endpoints(spec.network)  # names the variable when unset or wrong
    client = spec.client_factory(settings.watcher)
    db = Database(settings.database, application_name=spec.service)
    bus = Bus(settings.bus, service=spec.service)
    relay = OutboxRelay(db, bus)
    db.after_commit(relay.kick, only_if=OUTBOX_WRITTEN)
    engine = WatcherEngine(db, client, network, config, producer=spec.service)
    loop = ScannerLoop(engine)

    health = Health()
    health.add_check("database", db.ping)
    health.add_check("bus", bus.ping)
    health.add_check("chain", loop.check_ready)
    app = FastAPI(title=spec.service, docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(health.router())
    service_info(spec.service, spec.version)

    runner = ServiceRunner(spec.service, app, settings.http, health)
    # A payment on the wrong network of the family must be seen: watch the siblings' intents.
    siblings = [n.name for n in registry if n.family == network.family]
    consumer = WatchSetConsumer(network, siblings)

    async def start_bus() -> None:
        await bus.connect()
        await bus.consume(CONSUMER, ROUTING_KEYS, idempotent(db, CONSUMER, consumer.handle))

    runner.on_start(start_bus)
    runner.add_loop("outbox-relay", relay.run)
    runner.add_loop("scanner", loop.run)
    # Shutdown callbacks run in reverse: stop consuming first, the database last.
    runner.on_shutdown(db.dispose)
    runner.on_shutdown(client.close)
    runner.on_shutdown(bus.close)
    return WatcherService(runner, db, bus, relay, engine, loop, app)


def main(spec: WatcherSpec, argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"stablegate-{spec.service.removeprefix('chain-')}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the database schema up to date")
    commands.add_parser("serve", help="scan the chain and serve health and metrics")
    args = parser.parse_args(argv)

    settings = load_settings(spec.settings_cls, spec.default_schema)
    configure_logging(spec.service, settings.log.level, json_format=settings.log.json_format)
    if args.command == "migrate":
        migrations.upgrade(spec.migrations, settings.database)
        log.info("migrated", extra={"schema": settings.database.schema_name})
        return 0
    settings.watcher.endpoints(spec.network)  # fail before anything starts
    return asyncio.run(_serve(spec, settings))


async def _serve(spec: WatcherSpec, settings: WatcherServiceSettings) -> int:
    service = build_service(spec, settings)
    return await service.runner.run()
