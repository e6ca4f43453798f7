"""`stablegate-dashboard migrate | serve | create-user`.

`create-user --email ops@example.com --role admin|viewer` asks for the password twice at
a prompt that does not echo it, or reads it from the first line of standard input with
`--password-stdin` (for scripts). The password is never printed or logged; the command
prints the new user's id, email and role as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path

from stablegate_common.config import ConfigurationError, load_settings
from stablegate_common.core.errors import DomainError
from stablegate_common.db import Database
from stablegate_common.logging import configure_logging
from stablegate_common.migrations import upgrade
from stablegate_dashboard.settings import DashboardSettings
from stablegate_dashboard.users.models import ROLES

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_SCHEMA = "dashboard"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stablegate-dashboard")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the dashboard schema to the newest revision")
    commands.add_parser("serve", help="run the read-model consumers and HTTP")
    create = commands.add_parser("create-user", help="create an ops user")
    create.add_argument("--email", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    return parser


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise ConfigurationError("the two passwords differ")
    return first


async def _create_user(settings: DashboardSettings, email: str, role: str, password: str) -> int:
    from stablegate_dashboard.users.service import create_user

    db = Database(settings.database, application_name="stablegate-dashboard-cli")
    try:
        async with db.transaction() as session:
            user = await create_user(session, email=email, password=password, role=role)
    except DomainError as exc:
        print(f"stablegate-dashboard: {exc.param or 'error'}: {exc.message}", file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    print(json.dumps({"user_id": user.id, "email": user.email, "role": user.role}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings(DashboardSettings, DEFAULT_SCHEMA)
    configure_logging("dashboard", settings.log.level, json_format=settings.log.json_format)
    if args.command == "migrate":
        upgrade(MIGRATIONS, settings.database)
        return 0
    if args.command == "create-user":
        password = read_password(args.password_stdin)
        return asyncio.run(_create_user(settings, args.email, args.role, password))
    from stablegate_dashboard.app import build_service

    return asyncio.run(build_service(settings).run())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
