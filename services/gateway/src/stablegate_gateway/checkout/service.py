"""What the customer sees of a payment intent, decided in one place.

`customer_status` turns an intent into the status the page shows: headline and detail in
the customer's language, where the progress timeline stands, whether the address still
takes payments and how much is still to send. The page renders it on load and its script
renders the same object from `GET /pay/{id}/status`, so the server alone decides what
each state means; the script only puts text where it belongs.

Only what the customer may see leaves here: amounts, the deposit address, the customer's
own transactions. Merchant metadata never does (the description and reference are shown
because the merchant wrote them for the customer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stablegate_common.core.assets import Network
from stablegate_common.core.errors import UnknownNetwork
from stablegate_common.core.money import format_amount
from stablegate_gateway.checkout.i18n import Translator
from stablegate_gateway.checkout.repository import CheckoutRecord
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.core.lifecycle import Exception_, Status
from stablegate_gateway.intents.presenter import payment_uri, present_intent

# Statuses in which the deposit address still takes this intent's money.
OPEN = frozenset({Status.AWAITING_PAYMENT, Status.CONFIRMING, Status.PARTIALLY_PAID})
# Timeline steps: 1 waiting, 2 detected, 3 paid; 0 hides it (the payment ended otherwise).
STEP = {
    Status.AWAITING_PAYMENT: 1,
    Status.CONFIRMING: 2,
    Status.PARTIALLY_PAID: 2,
    Status.PAID: 3,
}
TONE = {
    Status.AWAITING_PAYMENT: "info",
    Status.CONFIRMING: "info",
    Status.PARTIALLY_PAID: "warning",
    Status.PAID: "success",
    Status.REQUIRES_ACTION: "warning",
    Status.EXPIRED: "danger",
    Status.CANCELED: "secondary",
}


@dataclass(frozen=True)
class CheckoutPage:
    """The parts of the page that do not change while it is open, plus the first status."""

    intent_id: str
    merchant_name: str
    description: str | None
    reference: str | None
    asset: str
    amount: str
    price: str | None  # the merchant's price when it was set in a fiat currency
    network_name: str
    family: str
    deposit_address: str
    success_url: str | None
    cancel_url: str | None
    status: dict[str, Any]


def checkout_page(
    record: CheckoutRecord, ctx: GatewayContext, t: Translator, now: datetime
) -> CheckoutPage:
    intent = record.intent
    network = _network(ctx, intent.network)
    public = present_intent(intent, record.transfers, ctx, record.head)
    return CheckoutPage(
        intent_id=intent.id,
        merchant_name=record.merchant_name,
        description=intent.description,
        reference=intent.reference,
        asset=intent.asset,
        amount=format_amount(intent.amount_base_units, intent.decimals),
        price=None
        if public["currency"] == intent.asset
        else f"{public['amount']} {public['currency']}",
        network_name=network.display_name if network else intent.network,
        family=network.family if network else "evm",
        deposit_address=public["deposit_address"],
        success_url=return_url(intent.success_url),
        cancel_url=return_url(intent.cancel_url),
        status=_status(record, public, network, t, now),
    )


def customer_status(
    record: CheckoutRecord, ctx: GatewayContext, t: Translator, now: datetime
) -> dict[str, Any]:
    """The body of `GET /pay/{id}/status` (and the page's first state)."""
    public = present_intent(record.intent, record.transfers, ctx, record.head)
    return _status(record, public, _network(ctx, record.intent.network), t, now)


def _status(
    record: CheckoutRecord,
    public: dict[str, Any],
    network: Network | None,
    t: Translator,
    now: datetime,
) -> dict[str, Any]:
    intent = record.intent
    status = Status(intent.status)
    received = intent.amount_pending_base_units + intent.amount_confirmed_base_units
    # Past expiry the address stops taking money at once, even before the expiry job
    # has moved the intent on (it runs every few seconds).
    open_now = status in OPEN and now < intent.expires_at
    to_send = max(intent.amount_base_units - received, 0) if open_now else 0
    transfers = [
        _transfer(tr, intent.asset, intent.confirmations_required, network, t)
        for tr in public["transfers"]
    ]
    fields = _message_fields(record, public, network, received=received, to_send=to_send)
    key = _message_key(status, intent.exception, to_send=to_send, open_now=open_now)
    title = "closing" if key == "closing" else status.value
    return {
        "id": intent.id,
        "status": status.value,
        "exception": intent.exception,
        "tone": "warning" if key == "closing" else TONE[status],
        "step": STEP.get(status, 0),
        "headline": t(f"status.{key}.headline", **fields),
        "detail": t(f"status.{key}.detail", **fields),
        "confirmations": t("timeline.confirmations", **fields) if transfers else "",
        "title": t(f"result.{title}"),
        "received_line": t("result.received", **fields) if received else "",
        "accepts_payment": to_send > 0,
        "amount_to_send": fields["remaining"],
        "amount_to_send_base_units": str(to_send),
        "payment_uri": payment_uri(intent, network, amount_base_units=to_send) if to_send else None,
        "deposit_address": public["deposit_address"],
        "amount_received": public["amount_received"],
        "transfers": transfers,
        "expires_at": public["expires_at"],
        "seconds_left": max(int((intent.expires_at - now).total_seconds()), 0),
        "seconds_total": max(int((intent.expires_at - intent.created_at).total_seconds()), 1),
        "final": status not in OPEN,
    }


def return_url(url: str | None) -> str | None:
    """A merchant return URL the page may link to: http(s) only. The API accepts no
    other, and this keeps a `javascript:` link off the page whatever wrote the row."""
    if url is None:
        return None
    scheme = url.split(":", 1)[0].lower()
    return url if scheme in ("http", "https") else None


def qr_payload(status: dict[str, Any]) -> str:
    """What the QR code holds: the EIP-681 URI for the amount still to send on EVM
    networks; the bare address on Tron, whose wallets share no payment URI."""
    uri = status["payment_uri"]
    return uri if isinstance(uri, str) else str(status["deposit_address"])


def _message_fields(
    record: CheckoutRecord,
    public: dict[str, Any],
    network: Network | None,
    *,
    received: int,
    to_send: int,
) -> dict[str, Any]:
    """The values the messages may name (`{remaining}`, `{reference}`, …)."""
    intent = record.intent
    return {
        "merchant": record.merchant_name,
        "asset": intent.asset,
        "amount": format_amount(intent.amount_base_units, intent.decimals),
        "received": public["amount_received"],
        "remaining": format_amount(to_send, intent.decimals),
        "excess": format_amount(max(received - intent.amount_base_units, 0), intent.decimals),
        "reference": intent.reference or intent.id,
        "required": intent.confirmations_required,
        "n": _least_confirmations(public["transfers"]),
        "network": network.display_name if network else intent.network,
    }


def _message_key(status: Status, exception: str | None, *, to_send: int, open_now: bool) -> str:
    """Which `status.<key>.*` messages describe this state."""
    if status in OPEN and not open_now:
        return "closing"  # past expiry, before the expiry job has moved the intent on
    if status is Status.REQUIRES_ACTION:
        known = {
            Exception_.UNDERPAID,
            Exception_.PAID_LATE,
            Exception_.WRONG_ASSET,
            Exception_.WRONG_NETWORK,
        }
        return exception if exception in known else "requires_action"
    if status is Status.PAID and exception == Exception_.OVERPAID:
        return "overpaid"
    if status is Status.PAID and exception is not None:
        return "paid_with_extra"  # another token or network also reached the address
    if status is Status.CONFIRMING and to_send > 0:
        return "confirming_partial"  # a top-up is on its way but still short
    return status.value


def _least_confirmations(transfers: list[dict[str, Any]]) -> int:
    """The confirmation count the customer waits on: the least deep counted transfer."""
    pending = [tr["confirmations"] for tr in transfers if tr["status"] == "pending"]
    if pending:
        return int(min(pending))
    return int(max((tr["confirmations"] for tr in transfers), default=0))


def _transfer(
    transfer: dict[str, Any], asset: str, required: int, network: Network | None, t: Translator
) -> dict[str, Any]:
    template = network.explorer_tx_url if network else ""
    if transfer["status"] == "confirmed":
        state = t("transfers.confirmed")
    elif transfer["status"] == "reverted":
        state = t("transfers.reverted")
    else:
        state = t("timeline.confirmations", n=transfer["confirmations"], required=required)
    return {
        "tx_hash": transfer["tx_hash"],
        "amount": transfer["amount"],
        # A wrong-asset transfer is shown in its own token (the presenter says which).
        "asset": transfer.get("asset") or asset,
        "confirmations": transfer["confirmations"],
        "status": transfer["status"],
        "state": state,
        "explorer_url": template.format(tx=transfer["tx_hash"]) if template else None,
    }


def _network(ctx: GatewayContext, name: str) -> Network | None:
    try:
        return ctx.registry.network(name)
    except UnknownNetwork:
        return None
