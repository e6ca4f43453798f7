"""Address forms: EIP-55 checksummed EVM addresses and Tron base58check addresses."""

from __future__ import annotations

import hashlib
import re

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}
_EVM_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
TRON_PREFIX = 0x41


def _sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _B58_ALPHABET[rem] + out
    leading = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading + out


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        if char not in _B58_INDEX:
            raise ValueError(f"{char!r} is not a base58 character")
        number = number * 58 + _B58_INDEX[char]
    leading = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * leading + body


def is_evm_checksum_address(text: str) -> bool:
    """True only for the EIP-55 mixed-case form (all-lower or all-upper are refused)."""
    return bool(_EVM_RE.match(text)) and to_checksum_address(text) == text


def evm_address_from_public_key(public_key: bytes) -> str:
    """`public_key` is the 64-byte uncompressed key without its 0x04 prefix."""
    return to_checksum_address(keccak(public_key)[-20:])


def tron_address_from_bytes(raw21: bytes) -> str:
    if len(raw21) != 21 or raw21[0] != TRON_PREFIX:
        raise ValueError("a Tron address is 21 bytes starting with 0x41")
    return b58encode(raw21 + _sha256d(raw21)[:4])


def tron_address_bytes(address: str) -> bytes:
    """The 21-byte form (0x41 || 20 bytes) of a base58check `T…` address; raises ValueError."""
    if len(address) != 34 or not address.startswith("T"):
        raise ValueError("a Tron address is 34 base58 characters starting with T")
    decoded = b58decode(address)
    if len(decoded) != 25:
        raise ValueError("a Tron address decodes to 25 bytes")
    body, checksum = decoded[:21], decoded[21:]
    if body[0] != TRON_PREFIX:
        raise ValueError("a Tron address starts with byte 0x41")
    if _sha256d(body)[:4] != checksum:
        raise ValueError("bad base58check checksum")
    return body


def tron_address_from_public_key(public_key: bytes) -> str:
    return tron_address_from_bytes(bytes([TRON_PREFIX]) + keccak(public_key)[-20:])
