"""The public payment-intent object (DESIGN.md §3), built in one place for the API, the
merchant events and the webhooks, so all three always say the same thing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stablegate_common.core.addresses import display_address
from stablegate_common.core.assets import Network
from stablegate_common.core.errors import UnknownNetwork
from stablegate_common.core.money import format_amount
from stablegate_gateway.api.serialization import iso_timestamp
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.networks.models import NetworkHead
from stablegate_gateway.transfers.models import Transfer


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
    return {
        "id": intent.id,
        "object": "payment_intent",
        "status": intent.status,
        "exception": intent.exception,
        "network": intent.network,
        "asset": intent.asset,
        "currency": intent.asset,
        "token_contract": display_address(family, intent.token_contract),
        "decimals": decimals,
        "amount": format_amount(intent.amount_base_units, decimals),
        "amount_base_units": str(intent.amount_base_units),
        "amount_received": format_amount(received, decimals),
        "amount_confirmed": format_amount(intent.amount_confirmed_base_units, decimals),
        "amount_remaining": format_amount(remaining, decimals),
        "deposit_address": display_address(family, intent.deposit_address),
        "payment_uri": payment_uri(intent, network),
        "checkout_url": f"{ctx.settings.gateway.public_base_url.rstrip('/')}/pay/{intent.id}",
        "confirmations_required": intent.confirmations_required,
        "expires_at": iso_timestamp(intent.expires_at),
        "created_at": iso_timestamp(intent.created_at),
        "reference": intent.reference,
        "description": intent.description,
        "metadata": dict(intent.metadata_ or {}),
        "transfers": [present_transfer(t, intent, network, head) for t in transfers],
    }


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


def payment_uri(intent: PaymentIntent, network: Network | None) -> str | None:
    """EIP-681 transfer URI with checksummed addresses and plain integers; Tron has no
    standard payment URI, so none is offered there."""
    if network is None or network.family != "evm" or network.chain_id is None:
        return None
    token = display_address("evm", intent.token_contract)
    to = display_address("evm", intent.deposit_address)
    return (
        f"ethereum:{token}@{network.chain_id}/transfer"
        f"?address={to}&uint256={intent.amount_base_units}"
    )


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
