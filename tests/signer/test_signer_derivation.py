"""Key derivation against published vectors and a second library."""

from __future__ import annotations

import pytest
from bip_utils import Bip39SeedGenerator, Bip44, Bip44Changes, Bip44Coins
from eth_account import Account

from stablegate_signer.errors import SeedError
from stablegate_signer.keys import Seed
from tests.signer.support import MNEMONIC, SEED

Account.enable_unaudited_hdwallet_features()


@pytest.mark.parametrize(
    ("network", "path", "address"),
    [
        ("ethereum", "m/44'/60'/0'/0/0", "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"),
        ("ethereum", "m/44'/60'/0'/0/1", "0x6Fac4D18c912343BF86fa7049364Dd4E424Ab9C0"),
        ("bsc", "m/44'/60'/0'/0/0", "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"),
        ("tron", "m/44'/195'/0'/0/0", "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"),
    ],
)
def test_published_vectors(network: str, path: str, address: str) -> None:
    assert SEED.address(path, network) == address


@pytest.mark.parametrize("index", [0, 1, 2, 17, 1000])
def test_evm_matches_eth_account(index: int) -> None:
    path = f"m/44'/60'/0'/0/{index}"
    expected = Account.from_mnemonic(MNEMONIC, account_path=path)
    assert SEED.address(path, "ethereum") == expected.address
    assert SEED.private_key(path) == bytes(expected.key)


@pytest.mark.parametrize("index", [0, 1, 5, 999])
def test_tron_matches_bip_utils_bip44(index: int) -> None:
    seed = Bip39SeedGenerator(MNEMONIC).Generate()
    chain = Bip44.FromSeed(seed, Bip44Coins.TRON).Purpose().Coin().Account(0)
    expected = chain.Change(Bip44Changes.CHAIN_EXT).AddressIndex(index).PublicKey().ToAddress()
    assert SEED.address(f"m/44'/195'/0'/0/{index}", "tron") == expected


@pytest.mark.parametrize(
    "mnemonic",
    [
        "abandon " * 12,  # bad checksum
        "abandon " * 11 + "zzzzzz",  # not a word
        "",
        "abandon abandon about",
    ],
)
def test_invalid_mnemonic_is_refused_without_echoing_it(mnemonic: str) -> None:
    with pytest.raises(SeedError) as info:
        Seed(mnemonic)
    assert "abandon" not in str(info.value)
    assert "zzzzzz" not in str(info.value)


def test_whitespace_and_case_of_layout_do_not_matter_but_the_repr_hides_the_seed() -> None:
    seed = Seed("  " + MNEMONIC.replace(" ", "\n ") + "\n")
    assert seed.address("m/44'/60'/0'/0/0", "ethereum") == SEED.address(
        "m/44'/60'/0'/0/0", "ethereum"
    )
    assert "abandon" not in repr(seed)
    assert repr(seed) == "Seed(<hidden>)"
