"""Assembly of a watcher service, shared by every chain: a watcher package supplies its
network name, schema, migrations folder and how to build its chain client, and gets a
`main()` with `migrate`, `serve` and `reset-chain` (forget the chain state, for devnets
that start again from block 0).

`serve` runs in one process: the HTTP app (`/healthz`, `/readyz`, `/metrics`), the
watch-set consumer, the outbox relay and the scanning loop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from stablegate_common import migrations
from stablegate_common.bus import OUTBOX_WRITTEN, Bus, OutboxRelay, idempotent
from stablegate_common.chains import ChainClient, TxReceiptSource
from stablegate_common.config import ConfigurationError, load_settings
from stablegate_common.core.errors import UnknownNetwork
from stablegate_common.db import Database
from stablegate_common.http.health import Health
from stablegate_common.lifecycle import ServiceRunner
from stablegate_common.logging import configure_logging
from stablegate_common.metrics import service_info
from stablegate_common.watcher import txtrack
from stablegate_common.watcher.config import WatcherServiceSettings, WatcherSettings
from stablegate_common.watcher.engine import WatcherEngine
from stablegate_common.watcher.identity import ResetSummary, reset_chain_state
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

    @property
    def command(self) -> str:
        """The console script, e.g. `stablegate-watcher-eth`."""
        return f"stablegate-{self.service.removeprefix('chain-')}"


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
    engine = WatcherEngine(
        db, client, network, config, producer=spec.service, reset_command=spec.command
    )
    # Funds out: the gateway's own transactions, followed by hash after each scan.
    tracker = None
    if isinstance(client, TxReceiptSource):
        tracker = txtrack.OutgoingTxTracker(
            db,
            client,
            network.name,
            txtrack.TrackerConfig(config.confirmations, config.reorg_window),
            producer=spec.service,
        )
    loop = ScannerLoop(engine, trackers=[tracker] if tracker else [])

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
        if tracker is not None:
            tracked = txtrack.TrackedTxConsumer(network.name)
            await bus.consume(
                txtrack.CONSUMER,
                txtrack.ROUTING_KEYS,
                idempotent(db, txtrack.CONSUMER, tracked.handle),
            )

    runner.on_start(start_bus)
    runner.add_loop("outbox-relay", relay.run)
    runner.add_loop("scanner", loop.run)
    # Shutdown callbacks run in reverse: stop consuming first, the database last.
    runner.on_shutdown(db.dispose)
    runner.on_shutdown(client.close)
    runner.on_shutdown(bus.close)
    return WatcherService(runner, db, bus, relay, engine, loop, app)


def main(spec: WatcherSpec, argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=spec.command)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the database schema up to date")
    commands.add_parser("serve", help="scan the chain and serve health and metrics")
    reset = commands.add_parser(
        "reset-chain",
        help="forget the scan cursor, block hashes, observed transfers and the chain "
        "identity (a devnet started again from block 0); the next start scans afresh",
    )
    reset.add_argument("--yes", action="store_true", help="really delete them")
    reset.add_argument("--force", action="store_true", help="allow it in production")
    args = parser.parse_args(argv)

    settings = load_settings(spec.settings_cls, spec.default_schema)
    configure_logging(spec.service, settings.log.level, json_format=settings.log.json_format)
    if args.command == "migrate":
        migrations.upgrade(spec.migrations, settings.database)
        log.info("migrated", extra={"schema": settings.database.schema_name})
        return 0
    if args.command == "reset-chain":
        return _reset_chain(spec, settings, confirmed=args.yes, forced=args.force)
    settings.watcher.endpoints(spec.network)  # fail before anything starts
    return asyncio.run(_serve(spec, settings))


async def _serve(spec: WatcherSpec, settings: WatcherServiceSettings) -> int:
    service = build_service(spec, settings)
    return await service.runner.run()


def _reset_chain(
    spec: WatcherSpec, settings: WatcherServiceSettings, *, confirmed: bool, forced: bool
) -> int:
    schema = settings.database.schema_name
    if settings.environment == "production" and not forced:
        print(
            f"{spec.command} reset-chain: refused in production (STABLEGATE_ENVIRONMENT="
            "production): the watcher would rescan from the head and miss every payment "
            "below it. Add --force if this really is a new chain.",
            file=sys.stderr,
        )
        return 2
    if not confirmed:
        print(
            f"{spec.command} reset-chain deletes the scan cursor, block hashes, observed "
            f"transfers and chain identity in schema {schema!r}; add --yes to do it.",
            file=sys.stderr,
        )
        return 2
    summary = asyncio.run(_reset(settings))
    log.warning(
        "chain state reset",
        extra={"network": spec.network, "schema": schema}
        | {"transfers": summary.transfers, "block_hashes": summary.block_hashes}
        | {"cursors": summary.cursors, "addresses_to_backfill": summary.addresses_to_backfill},
    )
    print(
        f"{spec.network}: chain state reset in schema {schema!r} ({summary.transfers} observed "
        f"transfers, {summary.block_hashes} block hashes, {summary.cursors} cursor dropped; "
        f"{summary.addresses_to_backfill} watched addresses to search again). The next "
        f"`{spec.command} serve` starts on the node's chain."
    )
    return 0


async def _reset(settings: WatcherServiceSettings) -> ResetSummary:
    db = Database(settings.database)
    try:
        async with db.transaction() as session:
            return await reset_chain_state(session)
    finally:
        await db.dispose()
