"""One signing round: check everything the request says, then sign every transaction or none."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stablegate_signer import __version__, evm, tron
from stablegate_signer.documents import (
    AnyTransaction,
    SignedResponse,
    SignedTransaction,
    SigningRequest,
    TronTransaction,
    check_digest,
    compute_summary,
    max_network_fee,
)
from stablegate_signer.errors import Declined, DerivationMismatch, PolicyViolation
from stablegate_signer.keys import Seed
from stablegate_signer.policy import (
    DEFAULT_EXPIRATION,
    DEFAULT_TIMESTAMP_SKEW,
    Policy,
    enforce,
    locked_totals,
    save_totals,
)
from stablegate_signer.units import NATIVE_DECIMALS, NATIVE_SYMBOL, format_amount
from stablegate_signer.verify import verify_signed


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Signer:
    seed: Seed
    policy: Policy
    clock: Callable[[], datetime] = field(default=_now)

    def check_derivation(self, request: SigningRequest) -> None:
        """Every source, and every destination given with a path, derives from the seed."""
        for tx in request.transactions:
            assert tx.source.path is not None
            endpoints = [("source", tx.source.address, tx.source.path)]
            if tx.destination is not None and tx.destination.path is not None:
                endpoints.append(("destination", tx.destination.address, tx.destination.path))
            for role, address, path in endpoints:
                derived = self.seed.address(path, tx.network)
                if derived != address:
                    raise DerivationMismatch(
                        # Never the derived address: over serve mode that is an oracle.
                        f"{role}.address does not derive from {role}.path",
                        transaction=tx.id,
                        field=f"{role}.address",
                    )

    def check_expiry(self, request: SigningRequest) -> None:
        """Tron times are checked against the signer's clock, not only each other."""
        now_ms = int(self.clock().timestamp() * 1000)
        tron = self.policy.rules.networks.get("tron")
        skew_ms = 1000 * (tron.max_timestamp_skew_seconds if tron else DEFAULT_TIMESTAMP_SKEW)
        horizon_ms = 1000 * (tron.max_expiration_seconds if tron else DEFAULT_EXPIRATION)
        for tx in request.transactions:
            if not isinstance(tx, TronTransaction):
                continue
            if tx.expiration <= now_ms:
                raise PolicyViolation(
                    "the transaction has expired by the signer's clock",
                    transaction=tx.id,
                    field="expiration",
                )
            if abs(tx.timestamp - now_ms) > skew_ms:
                raise PolicyViolation(
                    f"timestamp is more than {skew_ms // 1000} s from the signer's clock",
                    transaction=tx.id,
                    field="timestamp",
                )
            if tx.expiration > now_ms + horizon_ms:
                raise PolicyViolation(
                    f"expiration is more than {horizon_ms // 1000} s after the signer's clock",
                    transaction=tx.id,
                    field="expiration",
                )

    def sign(
        self, request: SigningRequest, confirm: Callable[[str], bool] | None = None
    ) -> SignedResponse:
        """Check, optionally ask `confirm(summary_text)`, sign all, self-verify, record totals."""
        check_digest(request)
        self.check_derivation(request)
        self.check_expiry(request)
        now = self.clock()
        with locked_totals(self.policy.state_path, now) as today:
            increments = enforce(self.policy, request, today)
            if confirm is not None and not confirm(describe(request)):
                raise Declined("not confirmed; nothing was signed")
            signed = [
                _sign_one(tx, self.seed.private_key(tx.source.path or ""))
                for tx in request.transactions
            ]
            response = SignedResponse(
                format="stablegate.signed_response",
                version=1,
                request_id=request.request_id,
                request_digest=request.digest,
                signed_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                signer_version=__version__,
                transactions=signed,
            )
            verify_signed(request, response)
            save_totals(self.policy.state_path, today, increments)
        return response


def _sign_one(tx: AnyTransaction, private_key: bytes) -> SignedTransaction:
    if isinstance(tx, TronTransaction):
        return tron.sign(tx, private_key)
    return evm.sign(tx, private_key)


def _signed_fields(tx: AnyTransaction) -> str:
    """Every field that goes into the signature, beyond the line above (finding: none hidden)."""
    skip = {"id", "purpose", "network", "source", "destination", "asset", "amount"}
    fields = [f"contract={tx.asset.contract or 'native'}"]
    for name, value in tx.model_dump(mode="json").items():
        if name not in skip and value is not None:
            fields.append(f"{name}={value}")
    return ", ".join(fields)


def describe(request: SigningRequest) -> str:
    """The human summary, recomputed from the transactions (never copied from the request)."""
    summary = compute_summary(request.transactions)
    lines = [
        f"Signing request {request.request_id} ({request.created_at}), digest {request.digest}"
    ]
    lines.append(f"{summary.transaction_count} transaction(s):")
    for tx in request.transactions:
        to = "(stake)" if tx.destination is None else tx.destination.address
        ours = " [ours]" if tx.destination is not None and tx.destination.path else ""
        fee = format_amount(max_network_fee(tx), NATIVE_DECIMALS[tx.network])
        lines.append(
            f"  {tx.id}: {tx.purpose} on {tx.network}: {tx.amount.decimal} {tx.asset.symbol} "
            f"from {tx.source.address} ({tx.source.path}) to {to}{ours}; "
            f"fee at most {fee} {NATIVE_SYMBOL[tx.network]}"
        )
        lines.append("      signed fields: " + _signed_fields(tx))
    lines.append("Totals:")
    for total in summary.totals:
        lines.append(f"  {total.network} {total.purpose}: {total.decimal} {total.symbol}")
    for fee_total in summary.network_fees:
        lines.append(
            f"  {fee_total.network} network fees: at most {fee_total.max_decimal} "
            f"{fee_total.symbol}"
        )
    return "\n".join(lines)
