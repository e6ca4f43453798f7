"""The signer's own policy file (TOML) and the last 24 hours of signing kept beside it.

The policy lives with the signer, never with the gateway: it names, per network, the chain
id, the derivation paths that are ours, the assets (symbol → contract and decimals), which
purposes are allowed and where each may send, per-asset limits and network-fee caps. A
purpose or asset it does not name is refused.

"Per day" is a rolling 24 hours, not a calendar day: a calendar day lets twice the limit
through around midnight. The state file keeps what was signed in the window, each entry
with its time; a signer clock earlier than the newest entry (set back, or a wrong clock
after a reboot) is refused, since it would reopen the window.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stablegate_signer.documents import (
    CHAIN_IDS,
    AnyTransaction,
    Purpose,
    SigningRequest,
    check_address,
    check_path,
    max_network_fee,
)
from stablegate_signer.errors import PolicyViolation, SignerError
from stablegate_signer.files import ownership_problem
from stablegate_signer.units import NATIVE_DECIMALS, NATIVE_SYMBOL, format_amount, parse_amount


class PolicyError(SignerError):
    code = "invalid_policy"
    exit_code = 2


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


DecimalText = str  # amounts in the policy are TOML strings ("1000.5"), never TOML floats


class Limit(_Strict):
    per_transaction: DecimalText | None = None
    per_request: DecimalText | None = None
    per_day: DecimalText | None = None


class PurposeRule(_Strict):
    # A list of addresses, "own" (derived from the seed under path_prefixes) or "any".
    destinations: list[str] | Literal["own", "any", "none"]
    limits: dict[str, Limit] = Field(default_factory=dict)
    # resource_delegation: the longest lock in blocks; 0 (default) allows no lock at all.
    max_lock_period: int = Field(default=0, ge=0, le=864_000)


class AssetRule(_Strict):
    decimals: int = Field(ge=0, le=36)
    contract: str | None = None


DEFAULT_TIMESTAMP_SKEW = 600  # seconds between a Tron timestamp and the signer's clock
DEFAULT_EXPIRATION = 3600  # seconds from the signer's clock to a Tron expiration
TRON_HARD_EXPIRATION = 24 * 3600  # java-tron refuses more


class NetworkPolicy(_Strict):
    chain_id: int | None = None
    # Tron only (ignored elsewhere): bounds against the signer's clock.
    max_timestamp_skew_seconds: int = Field(default=DEFAULT_TIMESTAMP_SKEW, ge=1, le=3600)
    max_expiration_seconds: int = Field(default=DEFAULT_EXPIRATION, ge=60, le=TRON_HARD_EXPIRATION)
    path_prefixes: list[str] = Field(min_length=1)
    max_fee_per_transaction: DecimalText
    max_fee_per_request: DecimalText
    max_fee_per_day: DecimalText | None = None  # over the rolling 24 hours; None: no cap
    assets: dict[str, AssetRule]
    purposes: dict[Purpose, PurposeRule]


class PolicyFile(_Strict):
    state_file: str | None = None
    networks: dict[Literal["ethereum", "bsc", "tron"], NetworkPolicy]

    @model_validator(mode="after")
    def _valid(self) -> Self:
        for name, net in self.networks.items():
            _check_network(name, net)
        return self


def _check_network(name: str, net: NetworkPolicy) -> None:
    where = f"networks.{name}"
    if name == "tron":
        if net.chain_id is not None:
            raise ValueError(f"{where}.chain_id: Tron has no chain id")
    elif net.chain_id not in CHAIN_IDS[name]:
        raise ValueError(f"{where}.chain_id: one of {sorted(CHAIN_IDS[name])}")
    for prefix in net.path_prefixes:
        check_path(prefix, name)
    native = NATIVE_SYMBOL[name]
    for symbol, asset in net.assets.items():
        if symbol == native:
            if asset.contract is not None or asset.decimals != NATIVE_DECIMALS[name]:
                raise ValueError(f"{where}.assets.{symbol}: the native coin, no contract")
        elif asset.contract is None:
            raise ValueError(f"{where}.assets.{symbol}: a token needs its contract")
        else:
            check_address(asset.contract, name)
    decimals = {s: a.decimals for s, a in net.assets.items()}
    for fee in (net.max_fee_per_transaction, net.max_fee_per_request, net.max_fee_per_day):
        if fee is not None:
            parse_amount(fee, NATIVE_DECIMALS[name])
    for purpose, rule in net.purposes.items():
        at = f"{where}.purposes.{purpose}"
        dest = rule.destinations
        if purpose == "sweep" and not isinstance(dest, list):
            raise ValueError(f"{at}.destinations: a list of treasury addresses")
        if purpose in ("fee_topup", "resource_delegation", "resource_undelegation") and (
            dest != "own"
        ):
            raise ValueError(f'{at}.destinations: "own"')
        if (purpose == "stake") != (dest == "none"):
            raise ValueError(f'{at}.destinations: "none" for stake and only for it')
        if dest == "any" and not rule.limits:
            raise ValueError(f"{at}.limits: required when destinations is any")
        if isinstance(dest, list):
            for address in dest:
                check_address(address, name)
        for symbol, limit in rule.limits.items():
            if symbol not in decimals:
                raise ValueError(f"{at}.limits.{symbol}: not in {where}.assets")
            values = (limit.per_transaction, limit.per_request, limit.per_day)
            if all(v is None for v in values):
                raise ValueError(f"{at}.limits.{symbol}: give at least one limit")
            for value in values:
                if value is not None:
                    parse_amount(value, decimals[symbol])


@dataclass(frozen=True)
class Policy:
    rules: PolicyFile
    state_path: Path

    @classmethod
    def load(cls, path: Path) -> Policy:
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PolicyError(f"cannot read the policy {path}: {exc}") from exc
        problem = ownership_problem(path, "policy file")
        if problem is not None:
            raise PolicyError(problem)
        try:
            rules = PolicyFile.model_validate(data)
        except (ValidationError, ValueError) as exc:
            raise PolicyError(f"policy {path}: {_first_error(exc)}") from exc
        state = Path(rules.state_file) if rules.state_file else Path(path.stem + ".state.json")
        return cls(rules, state if state.is_absolute() else path.parent / state)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        loc = ".".join(str(p) for p in error["loc"])
        return f"{loc}: {error['msg'].removeprefix('Value error, ')}" if loc else error["msg"]
    return str(exc)


def day_key(tx: AnyTransaction) -> str:
    return f"{tx.network}/{tx.purpose}/{tx.asset.symbol}"


def fee_key(network: str) -> str:
    """The window's key for worst-case network fees signed on `network`."""
    return f"{network}/network_fee/{NATIVE_SYMBOL[network]}"


WINDOW = timedelta(hours=24)
# How far the clock may be behind the newest entry before it counts as set back (NTP steps).
CLOCK_SLACK = timedelta(seconds=120)


@dataclass(frozen=True)
class Signed:
    at: datetime
    key: str
    base_units: int


@dataclass
class DailyTotals:
    """What was signed in the 24 hours before `now`, per network/purpose/asset (and per
    network for fees); older entries are dropped when the state is saved."""

    now: datetime
    entries: list[Signed] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        since = self.now - WINDOW
        out: dict[str, int] = {}
        for entry in self.entries:
            if entry.at > since:
                out[entry.key] = out.get(entry.key, 0) + entry.base_units
        return out


def enforce(policy: Policy, request: SigningRequest, today: DailyTotals) -> dict[str, int]:
    """Refuse the request if any transaction breaks the policy; return what it adds to the
    window (amounts per day_key, worst-case fees per fee_key).

    Derivation of addresses from paths is checked by the caller (it needs the seed); this
    checks that the paths are ours, the destinations, assets, limits and fee caps.
    """
    per_request: dict[str, int] = {}
    fees: dict[str, int] = {}
    window = today.totals
    for tx in request.transactions:
        net = _network(policy, tx)
        rule = _purpose(net, tx)
        _check_asset(net, tx)
        _check_paths(net, tx)
        _check_destination(rule, tx)
        _check_lock(rule, tx)
        _check_fees(net, tx, fees, window)
        key = day_key(tx)
        per_request[key] = per_request.get(key, 0) + tx.amount.base_units
        _check_limits(rule, tx, per_request[key], window.get(key, 0) + per_request[key])
    return {**per_request, **{fee_key(n): v for n, v in fees.items()}}


def _check_fees(
    net: NetworkPolicy, tx: AnyTransaction, fees: dict[str, int], window: Mapping[str, int]
) -> None:
    """The worst-case fee against the per-transaction, per-request and 24-hour caps;
    adds it to `fees` (per network, this request)."""
    fee = max_network_fee(tx)
    decimals, symbol = NATIVE_DECIMALS[tx.network], NATIVE_SYMBOL[tx.network]
    fee_cap = parse_amount(net.max_fee_per_transaction, decimals)
    if fee > fee_cap:
        raise _refuse(tx, "network fee", fee, fee_cap, symbol)
    fees[tx.network] = fees.get(tx.network, 0) + fee
    request_cap = parse_amount(net.max_fee_per_request, decimals)
    if fees[tx.network] > request_cap:
        raise _refuse(tx, "network fee per request", fees[tx.network], request_cap, symbol)
    if net.max_fee_per_day is not None:
        day_cap = parse_amount(net.max_fee_per_day, decimals)
        in_day = window.get(fee_key(tx.network), 0) + fees[tx.network]
        if in_day > day_cap:
            raise _refuse(tx, "network fee per day", in_day, day_cap, symbol)


def _network(policy: Policy, tx: AnyTransaction) -> NetworkPolicy:
    net = policy.rules.networks.get(tx.network)
    if net is None:
        raise PolicyViolation(
            f"the policy allows nothing on {tx.network}", transaction=tx.id, field="network"
        )
    if tx.network != "tron" and getattr(tx, "chain_id", None) != net.chain_id:
        raise PolicyViolation(
            f"chain id is not {net.chain_id}, the policy's for {tx.network}",
            transaction=tx.id,
            field="chain_id",
        )
    return net


def _purpose(net: NetworkPolicy, tx: AnyTransaction) -> PurposeRule:
    rule = net.purposes.get(tx.purpose)
    if rule is None:
        raise PolicyViolation(
            f"the policy allows no {tx.purpose} on {tx.network}", transaction=tx.id, field="purpose"
        )
    return rule


def _check_asset(net: NetworkPolicy, tx: AnyTransaction) -> None:
    asset = net.assets.get(tx.asset.symbol)
    if asset is None or (asset.contract, asset.decimals) != (tx.asset.contract, tx.asset.decimals):
        raise PolicyViolation(
            f"{tx.asset.symbol} with contract {tx.asset.contract} and {tx.asset.decimals} "
            f"decimals is not an asset the policy names on {tx.network}",
            transaction=tx.id,
            field="asset",
        )


def _under(path: str, prefixes: list[str]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def _check_paths(net: NetworkPolicy, tx: AnyTransaction) -> None:
    assert tx.source.path is not None
    if not _under(tx.source.path, net.path_prefixes):
        raise PolicyViolation(
            f"source path {tx.source.path} is outside the policy's prefixes",
            transaction=tx.id,
            field="source.path",
        )
    dest = tx.destination
    if dest is not None and dest.path is not None and not _under(dest.path, net.path_prefixes):
        raise PolicyViolation(
            f"destination path {dest.path} is outside the policy's prefixes",
            transaction=tx.id,
            field="destination.path",
        )


def _check_destination(rule: PurposeRule, tx: AnyTransaction) -> None:
    dest = rule.destinations
    if dest == "none" or dest == "any":
        return  # "none": the document model already refuses a stake with a destination
    assert tx.destination is not None
    if dest == "own":
        if tx.destination.path is None:
            raise PolicyViolation(
                f"a {tx.purpose} goes to one of our derived addresses",
                transaction=tx.id,
                field="destination.path",
            )
        return
    if tx.destination.address not in dest:
        raise PolicyViolation(
            f"destination {tx.destination.address} is not one the policy allows for {tx.purpose}",
            transaction=tx.id,
            field="destination.address",
        )


def _check_lock(rule: PurposeRule, tx: AnyTransaction) -> None:
    lock = getattr(tx, "lock", None)
    period = getattr(tx, "lock_period", None) or 0
    if lock and (rule.max_lock_period == 0 or period > rule.max_lock_period):
        raise PolicyViolation(
            f"a lock of {period} blocks exceeds the policy's max_lock_period "
            f"{rule.max_lock_period} (0: no lock)",
            transaction=tx.id,
            field="lock_period",
        )


def _check_limits(rule: PurposeRule, tx: AnyTransaction, in_request: int, in_day: int) -> None:
    if not rule.limits:
        return
    limit = rule.limits.get(tx.asset.symbol)
    if limit is None:
        raise PolicyViolation(
            f"the policy sets no limit for {tx.asset.symbol} {tx.purpose}s",
            transaction=tx.id,
            field="asset.symbol",
        )
    d = tx.asset.decimals
    for name, cap_text, value in (
        ("per transaction", limit.per_transaction, tx.amount.base_units),
        ("per request", limit.per_request, in_request),
        ("per day", limit.per_day, in_day),
    ):
        if cap_text is not None and value > parse_amount(cap_text, d):
            raise _refuse(
                tx,
                f"{tx.purpose} {name}",
                value,
                parse_amount(cap_text, d),
                tx.asset.symbol,
                decimals=d,
                field="amount",
            )


def _refuse(
    tx: AnyTransaction,
    what: str,
    value: int,
    cap: int,
    symbol: str,
    decimals: int | None = None,
    field: str = "fee",
) -> PolicyViolation:
    d = NATIVE_DECIMALS[tx.network] if decimals is None else decimals
    return PolicyViolation(
        f"{what} {format_amount(value, d)} {symbol} exceeds the limit {format_amount(cap, d)}",
        transaction=tx.id,
        field=field,
    )


@contextmanager
def locked_totals(state_path: Path, now: datetime) -> Iterator[DailyTotals]:
    """Hold the state file's lock; yields the window before `now`; the caller saves with
    `save_totals`. Refuses a clock that went back behind the newest entry."""
    lock_path = state_path.with_name(state_path.name + ".lock")
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            totals = _read_totals(state_path, now)
            newest = max((e.at for e in totals.entries), default=None)
            if newest is not None and now < newest - CLOCK_SLACK:
                raise PolicyError(
                    f"the signer's clock ({_iso(now)}) is before the newest signing recorded "
                    f"in {state_path} ({_iso(newest)}): set the clock right; nothing was signed"
                )
            yield totals
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_totals(state_path: Path, now: datetime) -> DailyTotals:
    try:
        data = json.loads(state_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DailyTotals(now)
    except (OSError, ValueError) as exc:
        raise PolicyError(f"the state file {state_path} is unreadable: {exc}") from exc
    problem = ownership_problem(state_path, "state file")
    if problem is not None:
        raise PolicyError(problem)
    malformed = PolicyError(f"the state file {state_path} is malformed")
    if not isinstance(data, Mapping):
        raise malformed
    if "day" in data and "signed" not in data:
        return _legacy_totals(data, now, malformed)
    signed = data.get("signed")
    if not isinstance(signed, list):
        raise malformed
    entries = []
    for item in signed:
        try:
            at = datetime.strptime(item["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            key, units = str(item["key"]), item["base_units"]
        except (TypeError, KeyError, ValueError) as exc:
            raise malformed from exc
        if not isinstance(units, str) or not units.isdigit():
            raise malformed
        entries.append(Signed(at, key, int(units)))
    return DailyTotals(now, entries)


def _legacy_totals(
    data: Mapping[str, object], now: datetime, malformed: PolicyError
) -> DailyTotals:
    """A state file of the calendar-day format: its totals count as signed at the last
    moment of their day (the conservative reading), so they leave the window last."""
    totals = data.get("totals", {})
    if not isinstance(totals, Mapping) or not all(
        isinstance(v, str) and v.isdigit() for v in totals.values()
    ):
        raise malformed
    try:
        day_end = datetime.fromisoformat(str(data["day"])).replace(tzinfo=UTC) + WINDOW
    except ValueError as exc:
        raise malformed from exc
    at = min(day_end - timedelta(microseconds=1), now)
    return DailyTotals(now, [Signed(at, str(k), int(v)) for k, v in totals.items()])


def save_totals(state_path: Path, totals: DailyTotals, increments: Mapping[str, int]) -> None:
    """Add `increments` at `totals.now`, drop what left the window, and replace the state
    file atomically (write, fsync, rename)."""
    since = totals.now - WINDOW
    kept = [e for e in totals.entries if e.at > since]
    kept += [Signed(totals.now, k, v) for k, v in sorted(increments.items()) if v]
    totals.entries = kept
    body = {
        "signed": [
            {
                "at": e.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "key": e.key,
                "base_units": str(e.base_units),
            }
            for e in kept
        ]
    }
    fd, tmp = tempfile.mkstemp(dir=state_path.parent, prefix=state_path.name + ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(body, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, state_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(state_path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
