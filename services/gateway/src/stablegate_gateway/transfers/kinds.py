"""What a transfer attached to an intent is to that intent: a payment that counts, or a
misdirected one (another registered token, or the same EVM address on the other
network) that is shown with the intent but never counted towards it."""

from __future__ import annotations

from typing import Literal

from stablegate_gateway.core.lifecycle import Misdirection
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.transfers.models import Transfer

TransferKind = Literal["payment", "wrong_asset", "wrong_network"]


def transfer_kind(intent: PaymentIntent, transfer: Transfer) -> TransferKind:
    return kind_of(intent, network=transfer.network, token_contract=transfer.token_contract)


def kind_of(intent: PaymentIntent, *, network: str, token_contract: str) -> TransferKind:
    if network != intent.network:
        return "wrong_network"
    if token_contract != intent.token_contract:
        return "wrong_asset"
    return "payment"


def misdirection(kind: TransferKind) -> Misdirection | None:
    return None if kind == "payment" else Misdirection(kind)
