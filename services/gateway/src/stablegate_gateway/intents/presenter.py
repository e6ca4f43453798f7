"""The public payment-intent object (DESIGN.md §3), built in one place for the API, the
merchant events and the webhooks, so all three always say the same thing."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from stablegate_common.core.addresses import display_address
from stablegate_common.core.assets import Network
from stablegate_common.core.errors import UnknownNetwork
from stablegate_common.core.money import format_amount, to_base_units
from stablegate_gateway.api.serialization import iso_timestamp
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.core.rates import format_rate
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.intents.tolerance import present_tolerance
from stablegate_gateway.networks.models import NetworkHead
from stablegate_gateway.transfers.models import Transfer

FIAT_PLACES = 2  # a fiat code no longer configured is written like USD and EUR


def present_intent(
    intent: PaymentIntent,
    transfers: Sequence[Transfer],
    ctx: GatewayContext,
    head: NetworkHead | None,
) -> dict[str, Any]:
    network = _network(ctx, intent.network)
    family = _family(network, intent.deposit_address)
    decimals = intent.decimals
    received = intent.amount_pending_base_units + intent.amount_confirmed_base_units
    remaining = max(intent.amount_base_units - intent.amount_confirmed_base_units, 0)
    refunded = intent.amount_refunded_base_units or 0
    refundable = max(intent.amount_confirmed_base_units - refunded, 0)
    return {
        "id": intent.id,
        "object": "payment_intent",
        "status": intent.status,
        "exception": intent.exception,
        "network": intent.network,
        "asset": intent.asset,
        "currency": intent.currency,
        "token_contract": display_address(family, intent.token_contract),
        "decimals": decimals,
        "amount": requested_amount(intent, ctx),
        "amount_due": format_amount(intent.amount_base_units, decimals),
        "amount_base_units": str(intent.amount_base_units),
        "amount_received": format_amount(received, decimals),
        "amount_confirmed": format_amount(intent.amount_confirmed_base_units, decimals),
        "amount_remaining": format_amount(remaining, decimals),
        # Refunds not failed or canceled, and what is left to refund of what was received
        # and confirmed (booked).
        "amount_refunded": format_amount(refunded, decimals),
        "amount_refundable": format_amount(refundable, decimals),
        "deposit_address": display_address(family, intent.deposit_address),
        "payment_uri": payment_uri(intent, network),
        "checkout_url": f"{ctx.settings.gateway.public_base_url.rstrip('/')}/pay/{intent.id}",
        "confirmations_required": intent.confirmations_required,
        "expires_at": iso_timestamp(intent.expires_at),
        "created_at": iso_timestamp(intent.created_at),
        "reference": intent.reference,
        "description": intent.description,
        "metadata": dict(intent.metadata_ or {}),
        "success_url": intent.success_url,
        "cancel_url": intent.cancel_url,
        **lifecycle_fields(intent),
        **pricing_fields(intent),
        "transfers": [_present_attached(t, intent, network, head, ctx) for t in transfers],
    }


def lifecycle_fields(intent: PaymentIntent) -> dict[str, Any]:
    """The tolerance the intent was created with and a person's resolution, if any."""
    return {
        "underpayment_tolerance": present_tolerance(
            intent.underpayment_tolerance_percent,
            intent.underpayment_tolerance_base_units,
            intent.decimals,
        ),
        "resolution": (
            {"action": intent.resolution, "resolved_at": iso_timestamp(intent.resolved_at)}
            if intent.resolution is not None and intent.resolved_at is not None
            else None
        ),
    }


def requested_amount(intent: PaymentIntent, ctx: GatewayContext) -> str:
    """The price as asked, in `currency`: a fiat amount at the currency's decimal places,
    a token amount the way every token amount is written."""
    if intent.amount_requested is None:  # created before fiat pricing: asked = due
        return format_amount(intent.amount_base_units, intent.decimals)
    if intent.currency == intent.asset:
        asked = to_base_units(intent.amount_requested, intent.decimals)
        return format_amount(asked, intent.decimals)
    places = ctx.settings.pricing.fiat_currencies.get(intent.currency, FIAT_PLACES)
    return format(intent.amount_requested.quantize(Decimal(1).scaleb(-places)), "f")


def pricing_fields(intent: PaymentIntent) -> dict[str, Any]:
    """The locked rate (fiat-priced intents) and the fee quote, in the asset's units."""
    decimals = intent.decimals
    network_fee, processing_fee = intent.network_fee_base_units, intent.processing_fee_base_units
    return {
        "rate": format_rate(intent.rate) if intent.rate is not None else None,
        "rate_source": intent.rate_source,
        "rate_locked_until": (
            iso_timestamp(intent.rate_locked_until) if intent.rate_locked_until else None
        ),
        "fees": {
            "currency": intent.asset,
            "network_fee": format_amount(network_fee, decimals),
            "processing_fee": format_amount(processing_fee, decimals),
            "total": format_amount(network_fee + processing_fee, decimals),
        },
        "fee_payer": intent.fee_payer,
    }


def _present_attached(
    transfer: Transfer,
    intent: PaymentIntent,
    network: Network | None,
    head: NetworkHead | None,
    ctx: GatewayContext,
) -> dict[str, Any]:
    if transfer.network == intent.network:
        return present_transfer(transfer, intent, network, head)
    # A wrong-network transfer: its own network's tokens, decimals and depth.
    return present_transfer(transfer, intent, _network(ctx, transfer.network), None)


def present_transfer(
    transfer: Transfer, intent: PaymentIntent, network: Network | None, head: NetworkHead | None
) -> dict[str, Any]:
    family = _family(network, transfer.from_address)
    asset = network.asset_by_contract(transfer.token_contract) if network else None
    # A wrong-asset transfer is written in its own token's decimals, not the intent's.
    decimals = asset.decimals if asset is not None else intent.decimals
    return {
        "id": transfer.id,
        "object": "transfer",
        "network": transfer.network,
        "asset": asset.symbol if asset is not None else None,
        "tx_hash": transfer.tx_hash,
        "log_index": transfer.log_index,
        "block_number": transfer.block_number,
        "from_address": display_address(family, transfer.from_address),
        "amount": format_amount(transfer.amount_base_units, decimals),
        "amount_base_units": str(transfer.amount_base_units),
        "confirmations": confirmations(transfer, intent.confirmations_required, head),
        "status": transfer.status,
    }


def confirmations(transfer: Transfer, required: int, head: NetworkHead | None) -> int:
    """How deep the transfer is, from the latest head we heard of.

    Confirmed counts as `required` and reverted as 0. For a pending transfer the head can
    be older than the watcher's own count on the transfer, so the larger of the two wins.
    """
    if transfer.status == "confirmed":
        return required
    if transfer.status == "reverted":
        return 0
    from_head = head.head_block - transfer.block_number + 1 if head is not None else 0
    return max(0, min(required, max(from_head, transfer.confirmations)))


def payment_uri(
    intent: PaymentIntent, network: Network | None, *, amount_base_units: int | None = None
) -> str | None:
    """EIP-681 transfer URI with checksummed addresses and plain integers. Tron has no
    standard payment URI (chains.md §5): there it is the bare base58 deposit address,
    which every Tron wallet scans; the amount and token are shown beside it.

    `amount_base_units` asks for another amount than the intent's (the checkout's QR for
    what is still to send after a partial payment)."""
    if network is not None and network.family == "tron":
        return intent.deposit_address
    if network is None or network.family != "evm" or network.chain_id is None:
        return None
    token = display_address("evm", intent.token_contract)
    to = display_address("evm", intent.deposit_address)
    amount = intent.amount_base_units if amount_base_units is None else amount_base_units
    return f"ethereum:{token}@{network.chain_id}/transfer?address={to}&uint256={amount}"


def _network(ctx: GatewayContext, name: str) -> Network | None:
    # An intent outlives configuration: a network removed from the registry still lists.
    try:
        return ctx.registry.network(name)
    except UnknownNetwork:
        return None


def _family(network: Network | None, address: str) -> str:
    if network is not None:
        return network.family
    return "evm" if address.startswith("0x") else "tron"
