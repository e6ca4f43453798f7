"""`stablegate-dashboard migrate | serve`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from stablegate_common.config import load_settings
from stablegate_common.logging import configure_logging
from stablegate_common.migrations import upgrade
from stablegate_dashboard.settings import DashboardSettings

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_SCHEMA = "dashboard"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stablegate-dashboard")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the dashboard schema to the newest revision")
    commands.add_parser("serve", help="run the read-model consumers and HTTP")
    args = parser.parse_args(argv)

    settings = load_settings(DashboardSettings, DEFAULT_SCHEMA)
    configure_logging("dashboard", settings.log.level, json_format=settings.log.json_format)
    if args.command == "migrate":
        upgrade(MIGRATIONS, settings.database)
        return 0
    from stablegate_dashboard.app import build_service

    return asyncio.run(build_service(settings).run())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
