"""Where a refund or payout may go: a valid address of the network's family that is not
the zero address and not one of ours.

EVM: `0x` and 40 hex digits; a mixed-case address must carry a valid EIP-55 checksum (a
typo in a checksummed address is caught, not paid); all lower or upper case has no
checksum to check. Tron: base58check with the 0x41 prefix. Ours: every deposit address
the gateway derived (in use or not), the fee, payout and treasury wallets: money sent
there would never reach the customer; nor would it from a token contract.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.core.addresses import canonical_address
from stablegate_common.core.assets import Network
from stablegate_common.core.errors import InvalidRequest
from stablegate_gateway.addresses.models import DepositAddress
from stablegate_gateway.outgoing.config import OutgoingSettings
from stablegate_signer.addresses import is_evm_checksum_address, tron_address_bytes

PARAM = "destination_address"
_EVM = re.compile(r"0x[0-9a-fA-F]{40}")


class InvalidDestination(InvalidRequest):
    code = "invalid_destination"

    def __init__(self, message: str) -> None:
        super().__init__(message, param=PARAM)


def parse_destination(network: Network, text: str) -> str:
    """The canonical form of a well-formed, non-zero address of `network`."""
    address = text.strip()
    if network.family == "tron":
        try:
            raw = tron_address_bytes(address)
        except ValueError as exc:
            raise InvalidDestination(
                f"{address!r} is not a Tron address (base58check, T…): {exc}"
            ) from None
        if raw[1:] == bytes(20):
            raise InvalidDestination("the zero address cannot receive funds")
        return canonical_address("tron", address)
    if not _EVM.fullmatch(address):
        raise InvalidDestination(f"{address!r} is not an address on {network.name} (0x + 40 hex)")
    body = address[2:]
    if body != body.lower() and body != body.upper() and not is_evm_checksum_address(address):
        raise InvalidDestination(f"{address!r} has a wrong EIP-55 checksum (a mistyped character?)")
    if int(body, 16) == 0:
        raise InvalidDestination("the zero address cannot receive funds")
    return canonical_address("evm", address)


async def check_not_ours(
    session: AsyncSession, network: Network, address: str, outgoing: OutgoingSettings
) -> None:
    ours = {
        canonical_address(network.family, wallet.address)
        for role in ("fee_wallet", "payout_wallet")
        if (wallet := outgoing.wallet(role, network.name)) is not None
    }
    treasury = outgoing.treasury(network.name)
    if treasury is not None:
        ours.add(canonical_address(network.family, treasury))
    if address in ours:
        raise InvalidDestination(f"{address} is one of this gateway's own wallets")
    if any(asset.contract == address for asset in network.assets):
        raise InvalidDestination(
            f"{address} is the {network.name} token contract itself: tokens sent there are lost"
        )
    deposit = await session.scalar(
        select(DepositAddress.id).where(
            DepositAddress.family == network.family, DepositAddress.address == address
        )
    )
    if deposit is not None:
        raise InvalidDestination(f"{address} is one of this gateway's deposit addresses")
