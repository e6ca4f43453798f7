"""The asset registry: lookups, errors that name the field, devnet overlays, and contract
matching that only ever recognises the registered token contract."""

from __future__ import annotations

from typing import Any

import pytest

from stablegate_common.core.assets import MAINNET, AssetRegistry
from stablegate_common.core.errors import UnknownAsset, UnknownNetwork

USDT_ETH = "0xdac17f958d2ee523a2206206994597c13d831ec7"


@pytest.fixture
def registry() -> AssetRegistry:
    return AssetRegistry.from_mapping(MAINNET)


def test_networks(registry: AssetRegistry) -> None:
    assert registry.names() == ["bsc", "ethereum", "tron"]
    assert {n.name for n in registry} == {"bsc", "ethereum", "tron"}
    eth = registry.network("ethereum")
    assert (eth.family, eth.chain_id, eth.confirmations, eth.native_symbol) == ("evm", 1, 12, "ETH")
    assert registry.network("bsc").chain_id == 56
    tron = registry.network("tron")
    assert (tron.family, tron.chain_id, tron.confirmations) == ("tron", None, 19)


@pytest.mark.parametrize(
    ("network", "symbol", "decimals", "contract"),
    [
        ("ethereum", "USDT", 6, USDT_ETH),
        ("ethereum", "USDC", 6, "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"),
        ("bsc", "USDT", 18, "0x55d398326f99059ff775485246999027b3197955"),
        ("bsc", "USDC", 18, "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d"),
        ("tron", "USDT", 6, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"),
        ("tron", "USDC", 6, "TEkxiTehnzSmSe2XqrBj4w32RUN966rdz8"),
    ],
)
def test_asset_lookup(
    registry: AssetRegistry, network: str, symbol: str, decimals: int, contract: str
) -> None:
    asset = registry.asset(network, symbol)
    assert (asset.network, asset.symbol, asset.decimals, asset.contract) == (
        network,
        symbol,
        decimals,
        contract,
    )
    assert registry.asset(network, symbol.lower()) == asset


def test_unknown_network_names_the_field(registry: AssetRegistry) -> None:
    with pytest.raises(UnknownNetwork) as info:
        registry.network("solana")
    assert info.value.param == "network"
    assert info.value.code == "unknown_network"
    assert "'solana'" in info.value.message
    assert "bsc, ethereum, tron" in info.value.message


def test_unknown_asset_names_the_field(registry: AssetRegistry) -> None:
    with pytest.raises(UnknownAsset) as info:
        registry.asset("tron", "DAI")
    assert info.value.param == "asset"
    assert info.value.code == "unknown_asset"
    assert "tron" in info.value.message
    with pytest.raises(UnknownNetwork):
        registry.asset("polygon", "USDT")


@pytest.mark.parametrize(
    "spelling",
    [USDT_ETH, USDT_ETH.upper().replace("0X", "0x"), "0xdAC17F958D2ee523a2206206994597C13D831ec7"],
)
def test_contract_lookup_canonicalises_case(registry: AssetRegistry, spelling: str) -> None:
    asset = registry.network("ethereum").asset_by_contract(spelling)
    assert asset is not None
    assert asset.symbol == "USDT"


@pytest.mark.parametrize(
    ("network", "contract"),
    [
        # Same symbol on another contract: a look-alike token never counts.
        ("ethereum", "0xdac17f958d2ee523a2206206994597c13d831ec8"),
        # The BSC USDT contract is not an Ethereum token.
        ("ethereum", "0x55d398326f99059ff775485246999027b3197955"),
        ("tron", "TXLAQ63Xg1NAzckPwKHvzw7CSEmLMEqcdj"),
    ],
)
def test_look_alike_contract_is_not_an_asset(
    registry: AssetRegistry, network: str, contract: str
) -> None:
    assert registry.network(network).asset_by_contract(contract) is None


def test_tron_contract_lookup_is_exact(registry: AssetRegistry) -> None:
    tron = registry.network("tron")
    asset = tron.asset_by_contract("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")
    assert asset is not None
    assert asset.symbol == "USDT"
    with pytest.raises(ValueError, match="Tron"):  # base58 is case-sensitive: not the same key
        tron.asset_by_contract("tr7nhqjekqxgtci8q8zy4pl8otszgjlj6t")


DEVNET: dict[str, Any] = {
    "networks": {
        "ethereum": {
            "family": "evm",
            "chain_id": 31337,
            "confirmations": 2,
            "native_symbol": "ETH",
            "assets": {
                "USDT": {"contract": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "decimals": 6}
            },
        },
        "devchain": {
            "family": "evm",
            "chain_id": 31338,
            "confirmations": 1,
            "native_symbol": "DEV",
            "display_name": "Dev chain",
            "assets": {
                "usdc": {"contract": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512", "decimals": "18"}
            },
        },
    }
}


def test_overlay_replaces_and_adds_networks(registry: AssetRegistry) -> None:
    merged = registry.overlay(DEVNET)
    assert merged.names() == ["bsc", "devchain", "ethereum", "tron"]
    eth = merged.network("ethereum")
    assert (eth.chain_id, eth.confirmations) == (31337, 2)
    assert eth.asset("USDT").contract == "0x5fbdb2315678afecb367f032d93f642f64180aa3"
    with pytest.raises(UnknownAsset):  # the overlay replaces the whole network
        eth.asset("USDC")
    assert eth.display_name == "ethereum"
    dev_usdc = merged.asset("devchain", "USDC")
    assert (dev_usdc.symbol, dev_usdc.decimals) == ("USDC", 18)
    assert merged.network("tron") == registry.network("tron")
    # The original registry is untouched.
    assert registry.network("ethereum").chain_id == 1
    assert "devchain" not in registry.names()


def test_invalid_contract_in_a_mapping_is_refused() -> None:
    bad = {
        "networks": {
            "ethereum": {
                "family": "evm",
                "confirmations": 1,
                "native_symbol": "ETH",
                "assets": {"USDT": {"contract": "0x1234", "decimals": 6}},
            }
        }
    }
    with pytest.raises(ValueError, match="not an EVM address"):
        AssetRegistry.from_mapping(bad)
