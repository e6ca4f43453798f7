"""Watch-only derivation: published vectors, agreement with full private derivation, and
refusal of private keys and malformed keys."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import pytest
from bip_utils import Bip39SeedGenerator, Bip44, Bip44Changes, Bip44Coins

from stablegate_common.hd import (
    DEVNET_EVM_XPUB,
    DEVNET_TRON_XPUB,
    MAX_INDEX,
    AddressDeriver,
    derive_addresses,
    is_devnet_xpub,
)

MNEMONIC = " ".join(["abandon"] * 11 + ["about"])


@pytest.fixture(scope="module")
def seed() -> bytes:
    return bytes(Bip39SeedGenerator(MNEMONIC).Generate())


def _account(seed: bytes, coin: Bip44Coins) -> Bip44:
    return Bip44.FromSeed(seed, coin).Purpose().Coin().Account(0)


@pytest.mark.parametrize(
    ("family", "xpub", "index", "expected"),
    [
        ("evm", DEVNET_EVM_XPUB, 0, "0x9858effd232b4033e47d90003d41ec34ecaeda94"),
        ("evm", DEVNET_EVM_XPUB, 1, "0x6fac4d18c912343bf86fa7049364dd4e424ab9c0"),
        ("tron", DEVNET_TRON_XPUB, 0, "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"),
    ],
)
def test_published_vectors(family: str, xpub: str, index: int, expected: str) -> None:
    deriver = AddressDeriver(xpub, family)  # type: ignore[arg-type]
    assert deriver.derive(index) == expected


def test_devnet_xpubs_are_the_test_mnemonic_accounts(seed: bytes) -> None:
    assert _account(seed, Bip44Coins.ETHEREUM).PublicKey().ToExtended() == DEVNET_EVM_XPUB
    assert _account(seed, Bip44Coins.TRON).PublicKey().ToExtended() == DEVNET_TRON_XPUB


@pytest.mark.parametrize(
    ("family", "coin", "xpub"),
    [("evm", Bip44Coins.ETHEREUM, DEVNET_EVM_XPUB), ("tron", Bip44Coins.TRON, DEVNET_TRON_XPUB)],
)
def test_xpub_derivation_matches_private_derivation(
    seed: bytes, family: str, coin: Bip44Coins, xpub: str
) -> None:
    """m/44'/c'/0'/0/i from the seed equals 0/i from the account xpub, for a spread of i."""
    private_chain = _account(seed, coin).Change(Bip44Changes.CHAIN_EXT)
    deriver = AddressDeriver(xpub, family)  # type: ignore[arg-type]
    for index in (0, 1, 2, 19, 1000, 2**20, MAX_INDEX):
        expected = private_chain.AddressIndex(index).PublicKey().ToAddress()
        if family == "evm":
            expected = expected.lower()
        assert deriver.derive(index) == expected, index


def test_derive_range_matches_single_derivations() -> None:
    deriver = AddressDeriver(DEVNET_EVM_XPUB, "evm")
    addresses = deriver.derive_range(5, 4)
    assert addresses == [deriver.derive(i) for i in range(5, 9)]
    assert len(set(addresses)) == 4
    assert deriver.derive_range(0, 0) == []


def test_evm_output_is_canonical_lowercase() -> None:
    address = AddressDeriver(DEVNET_EVM_XPUB, "evm").derive(7)
    assert address == address.lower()
    assert address.startswith("0x")
    assert len(address) == 42


def test_surrounding_whitespace_is_tolerated() -> None:
    deriver = AddressDeriver(f"  {DEVNET_EVM_XPUB}\n", "evm")
    assert deriver.derive(0) == "0x9858effd232b4033e47d90003d41ec34ecaeda94"


@pytest.mark.parametrize("coin", [Bip44Coins.ETHEREUM, Bip44Coins.TRON])
def test_private_key_is_refused(seed: bytes, coin: Bip44Coins) -> None:
    xprv = _account(seed, coin).PrivateKey().ToExtended()
    assert xprv.startswith("xprv")
    family = "evm" if coin == Bip44Coins.ETHEREUM else "tron"
    with pytest.raises(ValueError, match=r"GATEWAY_EVM_XPUB holds an extended PRIVATE key") as info:
        AddressDeriver(xprv, family, setting="GATEWAY_EVM_XPUB")  # type: ignore[arg-type]
    assert xprv not in str(info.value)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "garbage",
        DEVNET_EVM_XPUB[:-1] + ("u" if DEVNET_EVM_XPUB[-1] != "u" else "v"),  # bad checksum
        DEVNET_EVM_XPUB[:50],
        "0x9858EfFD232B4033E47d90003D41EC34EcaEda94",
    ],
)
def test_malformed_xpub_is_refused_naming_the_setting(bad: str) -> None:
    with pytest.raises(ValueError, match=r"^GATEWAY_EVM_XPUB is not a valid extended public key"):
        AddressDeriver(bad, "evm", setting="GATEWAY_EVM_XPUB")


def test_xpub_at_the_wrong_depth_is_refused(seed: bytes) -> None:
    master = Bip44.FromSeed(seed, Bip44Coins.ETHEREUM)
    change = master.Purpose().Coin().Account(0).Change(Bip44Changes.CHAIN_EXT)
    for wrong in (master.PublicKey().ToExtended(), change.PublicKey().ToExtended()):
        with pytest.raises(ValueError, match=r"WATCH_XPUB must be the account-level xpub"):
            AddressDeriver(wrong, "evm", setting="WATCH_XPUB")


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown network family"):
        AddressDeriver(DEVNET_EVM_XPUB, "bitcoin")  # type: ignore[arg-type]


@pytest.mark.parametrize("index", [-1, MAX_INDEX + 1, 2**31 + 5, True, "3"])
def test_index_outside_the_non_hardened_range_is_refused(index: object) -> None:
    deriver = AddressDeriver(DEVNET_EVM_XPUB, "evm")
    with pytest.raises(ValueError, match="address index"):
        deriver.derive(index)  # type: ignore[arg-type]


def test_derive_range_refuses_crossing_into_hardened_indexes() -> None:
    deriver = AddressDeriver(DEVNET_TRON_XPUB, "tron")
    with pytest.raises(ValueError, match="exceed"):
        deriver.derive_range(MAX_INDEX, 2)
    with pytest.raises(ValueError, match="negative"):
        deriver.derive_range(0, -1)


def test_is_devnet_xpub() -> None:
    assert is_devnet_xpub(DEVNET_EVM_XPUB)
    assert is_devnet_xpub(DEVNET_TRON_XPUB + "\n")
    master = Bip44.FromSeed(bytes(range(64)), Bip44Coins.ETHEREUM)
    other = master.Purpose().Coin().Account(0).PublicKey().ToExtended()
    assert not is_devnet_xpub(other)
    assert AddressDeriver(other, "evm").derive(0) != AddressDeriver(DEVNET_EVM_XPUB, "evm").derive(
        0
    )


@pytest.mark.parametrize(("family", "xpub"), [("evm", DEVNET_EVM_XPUB), ("tron", DEVNET_TRON_XPUB)])
def test_derivation_speed_is_reported(family: str, xpub: str) -> None:
    deriver = AddressDeriver(xpub, family)  # type: ignore[arg-type]
    count = 1000
    started = time.perf_counter()
    addresses = deriver.derive_range(0, count)
    elapsed = time.perf_counter() - started
    assert len(set(addresses)) == count
    print(f"{family}: {count / elapsed:,.0f} addresses/s")


def test_derive_addresses_in_another_process_matches_the_deriver() -> None:
    """What the gateway's derivation process runs: same addresses as in this process."""
    here = AddressDeriver(DEVNET_EVM_XPUB, "evm").derive_range(5, 3)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        there = pool.submit(derive_addresses, DEVNET_EVM_XPUB, "evm", 5, 3).result(timeout=60)
    assert there == here
