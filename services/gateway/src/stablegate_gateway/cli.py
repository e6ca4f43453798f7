"""`stablegate-gateway`: run migrations, serve, create a merchant, or set a merchant's
default underpayment tolerance.

`create-merchant` prints one JSON object on stdout (the only time the secret key is ever
shown); logs go to stderr, so the output can be piped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.auth import KeyMode
from stablegate_common.config import load_settings
from stablegate_common.core.errors import DomainError, InvalidRequest
from stablegate_common.db import Database
from stablegate_common.logging import configure_logging
from stablegate_common.migrations import upgrade
from stablegate_gateway.context import SERVICE, GatewayContext
from stablegate_gateway.intents.tolerance import format_decimal, set_merchant_default
from stablegate_gateway.merchants.service import create_merchant
from stablegate_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

DEFAULT_SCHEMA = "gateway"
MIGRATIONS = Path(__file__).parent / "migrations"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stablegate-gateway", description="Stablegate's merchant API and payment engine."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the gateway's database schema up to date")
    commands.add_parser("serve", help="run the API and the background work until SIGTERM")
    merchant = commands.add_parser(
        "create-merchant", help="create a merchant and print its secret API key (once)"
    )
    merchant.add_argument("--name", required=True, help="the merchant's display name")
    merchant.add_argument("--mode", choices=["test", "live"], default="test", help="key mode")
    tolerance = commands.add_parser(
        "set-underpayment-tolerance",
        help="set a merchant's default underpayment tolerance (new intents copy it): a final "
        "amount short of the amount due by no more than the larger of PERCENT of it and "
        "AMOUNT token units is paid",
    )
    tolerance.add_argument("--merchant", required=True, help="the merchant id (mer_…)")
    tolerance.add_argument("--percent", default="0", help='percent of the amount due ("0.5")')
    tolerance.add_argument("--amount", default="0", help='token units ("0.10")')
    _outgoing_parser(commands)
    return parser


# --- funds out (issue 14): `stablegate-gateway outgoing …` -------------------------------


def _outgoing_parser(commands: Any) -> None:
    outgoing = commands.add_parser(
        "outgoing", help="funds out: plan sweeps, export signing requests, import signed files"
    )
    sub = outgoing.add_subparsers(dest="outgoing_command", required=True)
    plan = sub.add_parser("plan-sweep", help="plan a sweep now (one batch per network)")
    plan.add_argument("--network", choices=["ethereum", "bsc", "tron"], default=None)
    listing = sub.add_parser("list", help="batches, newest first, with their status")
    listing.add_argument("--limit", type=int, default=20)
    sub.add_parser("show", help="a batch and its transfers").add_argument("batch_id")
    export = sub.add_parser("export", help="issue a batch's signing request and write it")
    export.add_argument("batch_id")
    export.add_argument("-o", "--output", type=Path, required=True, help="REQUEST.json")
    sub.add_parser("import", help="accept a signed response (SIGNED.json)").add_argument(
        "signed_file", type=Path
    )
    sub.add_parser("cancel", help="cancel what is not broadcast yet").add_argument("batch_id")


def _outgoing(settings: GatewaySettings, args: argparse.Namespace) -> int:
    from stablegate_gateway.outgoing import repository
    from stablegate_gateway.outgoing.api import present_batch, present_batches
    from stablegate_gateway.outgoing.sweeps import plan_sweeps

    by = "cli"
    what = f"outgoing {args.outgoing_command}"

    async def run(session: AsyncSession, ctx: GatewayContext) -> dict[str, Any]:
        command = args.outgoing_command
        if command == "plan-sweep":
            planned = await plan_sweeps(session, ctx, args.network, by)
            return {"data": await present_batches(session, planned)}
        if command == "list":
            listed = await repository.list_batches(session, limit=args.limit)
            return {"data": await present_batches(session, listed)}
        if command == "export":
            document = await repository.issue_request(session, args.batch_id, by=by)
            args.output.write_text(document, encoding="utf-8")
            return {"batch_id": args.batch_id, "written": str(args.output)}
        if command == "import":
            try:
                signed = args.signed_file.read_bytes()
            except OSError as exc:
                raise InvalidRequest(f"cannot read {args.signed_file}: {exc.strerror}") from exc
            batch = await repository.accept_signed(session, signed, by=by)
        elif command == "cancel":
            batch = await repository.cancel_batch(session, args.batch_id, by=by)
        else:  # show
            batch = await repository.get_batch(session, args.batch_id)
        transfers = await repository.batch_transfers(session, batch.id)
        return present_batch(batch, transfers, detail=True)

    return asyncio.run(_run_in_transaction(settings, what, run))


# --- end funds out ---


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings(GatewaySettings, DEFAULT_SCHEMA)
    configure_logging(SERVICE, settings.log.level, json_format=settings.log.json_format)
    if args.command == "migrate":
        upgrade(MIGRATIONS, settings.database)
        log.info("migrations applied", extra={"schema": settings.database.schema_name})
        return 0
    if args.command == "serve":
        # Imported here: the whole service graph (web3, the scheduler, …) takes seconds to
        # import, which `migrate` (an init container) and `create-merchant` need not pay.
        from stablegate_gateway.app import build_service

        return asyncio.run(build_service(settings).run())
    if args.command == "outgoing":
        return _outgoing(settings, args)
    if args.command == "set-underpayment-tolerance":
        return asyncio.run(_set_tolerance(settings, args.merchant, args.percent, args.amount))
    return asyncio.run(_create_merchant(settings, args.name, args.mode))


Command = Callable[[AsyncSession, GatewayContext], Awaitable[dict[str, Any]]]


async def _run_in_transaction(settings: GatewaySettings, what: str, command: Command) -> int:
    """Run `command` in one transaction and print its result as one JSON line."""
    db = Database(settings.database, application_name=f"stablegate-{SERVICE}-cli")
    ctx = GatewayContext(settings=settings, registry=settings.asset_registry(), db=db)
    try:
        async with db.transaction() as session:
            output = await command(session, ctx)
    except DomainError as exc:
        sys.stderr.write(f"stablegate-gateway: {exc.message}\n")
        return 2
    except SQLAlchemyError as exc:
        log.error(
            "command failed (has `migrate` run?)", extra={"command": what, "error": repr(exc)}
        )
        return 1
    finally:
        await db.dispose()
    sys.stdout.write(json.dumps(output) + "\n")
    return 0


async def _create_merchant(settings: GatewaySettings, name: str, mode: KeyMode) -> int:
    async def create(session: AsyncSession, ctx: GatewayContext) -> dict[str, Any]:
        created = await create_merchant(session, ctx, name=name, mode=mode)
        return {
            "merchant_id": created.merchant.id,
            "name": created.merchant.name,
            "api_key_id": created.api_key.id,
            "mode": created.api_key.mode,
            "secret_key": created.secret,
        }

    return await _run_in_transaction(settings, "create the merchant", create)


async def _set_tolerance(
    settings: GatewaySettings, merchant_id: str, percent: str, amount: str
) -> int:
    async def update(session: AsyncSession, _: GatewayContext) -> dict[str, Any]:
        merchant = await set_merchant_default(session, merchant_id, percent=percent, amount=amount)
        return {
            "merchant_id": merchant.id,
            "underpayment_tolerance": {
                "percent": format_decimal(merchant.underpayment_tolerance_percent),
                "amount": format_decimal(merchant.underpayment_tolerance_amount),
            },
        }

    return await _run_in_transaction(settings, "set the tolerance", update)


if __name__ == "__main__":
    raise SystemExit(main())
