"""`stablegate-signer`: sign a request file, serve signing locally, verify, inspect, derive.

The seed comes from `--seed-file`, the STABLEGATE_SIGNER_SEED environment variable or a
hidden prompt — never from the command line. Exit codes: 0 signed/ok, 1 internal error,
2 usage or policy file, 3 invalid document or digest, 4 derivation mismatch, 5 policy
refusal, 6 not confirmed, 7 seed, 8 verification failed.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile
from pathlib import Path

from stablegate_signer import __version__
from stablegate_signer.documents import (
    COIN_TYPES,
    check_path,
    dump,
    load_request,
    load_response,
)
from stablegate_signer.errors import SignerError
from stablegate_signer.keys import read_seed
from stablegate_signer.policy import Policy
from stablegate_signer.signing import Signer, describe
from stablegate_signer.verify import verify_signed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stablegate-signer", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    sign = sub.add_parser("sign", help="sign a signing request file")
    sign.add_argument("request", type=Path)
    sign.add_argument("-o", "--output", type=Path, required=True)
    sign.add_argument("--policy", type=Path, required=True)
    sign.add_argument("--seed-file", type=Path)
    sign.add_argument("--yes", action="store_true", help="sign without asking for confirmation")

    serve = sub.add_parser("serve", help="sign requests over a local HTTP endpoint")
    where = serve.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", type=Path, help="a Unix socket path (created mode 0600)")
    where.add_argument("--listen", help="127.0.0.1:PORT")
    serve.add_argument("--policy", type=Path, required=True)
    serve.add_argument("--seed-file", type=Path)
    serve.add_argument("--token-file", type=Path, help="--listen: the bearer token's file")
    serve.add_argument("--token-env", help="--listen: the variable holding the bearer token")
    serve.add_argument("--socket-group", help="--socket: mode 0660 and this group")
    serve.add_argument(
        "--allow-uid", type=int, action="append", default=[], help="--socket: a peer uid allowed"
    )

    verify = sub.add_parser("verify", help="check a signed file against its request")
    verify.add_argument("request", type=Path)
    verify.add_argument("signed", type=Path)

    show = sub.add_parser("show", help="print a request's summary (checks its digest)")
    show.add_argument("request", type=Path)

    address = sub.add_parser("address", help="print the addresses of derivation paths")
    address.add_argument("--network", choices=["ethereum", "bsc", "tron"], required=True)
    address.add_argument("paths", nargs="+")
    address.add_argument("--seed-file", type=Path)

    xpub = sub.add_parser("xpub", help="print the account xpub the gateway derives addresses from")
    xpub.add_argument("--network", choices=["ethereum", "bsc", "tron"], required=True)
    xpub.add_argument("--account", type=int, default=0)
    xpub.add_argument("--seed-file", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except SignerError as exc:
        print(f"stablegate-signer: refused: {exc.describe()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("stablegate-signer: interrupted; nothing was signed", file=sys.stderr)
        return 130


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SystemExit(f"stablegate-signer: cannot read {path}: {exc.strerror}") from None


def _run(args: argparse.Namespace) -> int:
    if args.command == "show":
        print(describe(load_request(_read(args.request))))
        return 0
    if args.command == "verify":
        request = load_request(_read(args.request))
        verified = verify_signed(request, load_response(_read(args.signed)))
        for tx in verified:
            print(f"{tx.id}: {tx.network} {tx.tx_hash}")
        print(f"ok: {len(verified)} transaction(s) match request {request.request_id}")
        return 0
    if args.command == "address":
        for path in args.paths:
            try:
                check_path(path, args.network)
            except ValueError as exc:
                raise SystemExit(f"stablegate-signer: {exc}") from None
        seed = read_seed(args.seed_file, getpass.getpass)
        for path in args.paths:
            print(f"{path} {seed.address(path, args.network)}")
        return 0
    if args.command == "xpub":
        path = f"m/44'/{COIN_TYPES[args.network]}'/{args.account}'"
        check_path(path, args.network)
        print(f"{path} {read_seed(args.seed_file, getpass.getpass).account_xpub(path)}")
        return 0
    policy = Policy.load(args.policy)
    if args.command == "serve":
        from stablegate_signer.server import check_listen, make_server, read_token

        token = None
        if args.listen:
            check_listen(args.listen)
            token = read_token(args.token_file, args.token_env)
        server = make_server(
            Signer(read_seed(args.seed_file, None), policy),
            args.socket,
            args.listen,
            token=token,
            socket_group=args.socket_group,
            allow_uids=frozenset(args.allow_uid),
        )
        print(
            f"stablegate-signer: serving on {args.socket or args.listen}",
            file=sys.stderr,
            flush=True,
        )
        try:
            server.serve_forever()
        finally:
            server.server_close()
            if args.socket is not None:
                args.socket.unlink(missing_ok=True)
        return 0
    request = load_request(_read(args.request))  # refuse a bad document before asking for the seed
    signer = Signer(read_seed(args.seed_file, getpass.getpass), policy)
    response = signer.sign(request, confirm=None if args.yes else _confirm)
    _write_atomically(args.output, dump(response))
    print(f"signed {len(response.transactions)} transaction(s) into {args.output}", file=sys.stderr)
    return 0


def _confirm(summary: str) -> bool:
    print(summary, flush=True)
    try:
        answer = input("Sign these transactions? Type 'yes' to sign: ")
    except EOFError:
        return False
    return answer.strip().lower() == "yes"


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=path.name + ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


if __name__ == "__main__":
    raise SystemExit(main())
