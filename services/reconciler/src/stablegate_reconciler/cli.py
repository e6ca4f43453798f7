"""`stablegate-reconciler migrate | serve`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from stablegate_common.config import load_settings
from stablegate_common.logging import configure_logging
from stablegate_common.migrations import upgrade
from stablegate_reconciler.settings import ReconcilerSettings

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_SCHEMA = "reconciler"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stablegate-reconciler")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the reconciler schema to the newest revision")
    commands.add_parser("serve", help="run consumers, the reconciliation job and HTTP")
    args = parser.parse_args(argv)

    settings = load_settings(ReconcilerSettings, DEFAULT_SCHEMA)
    configure_logging("reconciler", settings.log.level, json_format=settings.log.json_format)
    if args.command == "migrate":
        upgrade(MIGRATIONS, settings.database)
        return 0
    # Imported here so that `migrate` does not load the chain and bus stacks.
    from stablegate_reconciler.app import build_service

    return asyncio.run(build_service(settings).run())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
