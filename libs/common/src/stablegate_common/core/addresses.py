"""Address forms. Inside the system an EVM address is lowercase 0x hex and a Tron address
is base58 `T…`; users see EIP-55 checksummed EVM addresses."""

from __future__ import annotations

import re

from eth_utils.address import to_checksum_address

_EVM = re.compile(r"^0x[0-9a-fA-F]{40}$")
_TRON = re.compile(r"^T[1-9A-HJ-NP-Za-km-z]{33}$")


def canonical_address(family: str, address: str) -> str:
    if family == "evm":
        if not _EVM.match(address):
            raise ValueError(f"not an EVM address: {address!r}")
        return address.lower()
    if family == "tron":
        if not _TRON.match(address):
            raise ValueError(f"not a Tron base58 address: {address!r}")
        return address
    raise ValueError(f"unknown network family {family!r}")


def display_address(family: str, address: str) -> str:
    return to_checksum_address(address) if family == "evm" else address
