"""EVM log blooms: does a block's `logsBloom` say a registered token logged a Transfer?

A block header's 2048-bit bloom has, for every log of the block, three bits set for the
emitting contract's address and three for each topic (yellow paper, M3:2048: the bits are
the low 11 bits of the first three byte pairs of keccak256 of the value). No bit unset
means "certainly not there"; all set means "probably there". The engine asks only about
blocks for which no log came back, so a false positive costs one extra query and a
false negative cannot happen.

The probes are computed once per token list; a test is a few byte lookups per block.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_utils.crypto import keccak

from stablegate_common.chains.evm import BLOOM_BYTES, TRANSFER_TOPIC

Probe = tuple[tuple[int, int], ...]  # (byte index, bit mask) for each of the three bits


def probe(value: bytes) -> Probe:
    """The three bloom bits of `value` (an address's 20 bytes or a topic's 32)."""
    digest = keccak(value)
    bits = [((digest[i] << 8) | digest[i + 1]) & 0x7FF for i in (0, 2, 4)]
    # Bit k counts from the least significant end of the big-endian 256-byte bloom.
    return tuple((BLOOM_BYTES - 1 - bit // 8, 1 << (bit % 8)) for bit in bits)


def _has(bloom: bytes, bits: Probe) -> bool:
    return all(bloom[index] & mask for index, mask in bits)


class TransferBloom:
    """Bloom test for "one of `contracts` may have emitted a log with `topic`" (by
    default the ERC-20 Transfer topic)."""

    def __init__(self, contracts: Sequence[str], topic: str = TRANSFER_TOPIC) -> None:
        self._topic = probe(bytes.fromhex(topic.removeprefix("0x")))
        self._contracts = [probe(bytes.fromhex(c.removeprefix("0x"))) for c in contracts]

    def may_contain(self, bloom: bytes) -> bool:
        if not _has(bloom, self._topic):
            return False
        return any(_has(bloom, bits) for bits in self._contracts)
