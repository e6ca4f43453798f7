"""The asset registry: which networks exist, which token contracts count, their decimals.

The single source of truth for decimals and confirmation depth. Tokens are identified by
(network, contract address), never by symbol: a look-alike contract with the same
symbol is simply not in the registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from stablegate_common.core.addresses import canonical_address
from stablegate_common.core.errors import UnknownAsset, UnknownNetwork

Family = Literal["evm", "tron"]


@dataclass(frozen=True)
class Asset:
    network: str
    symbol: str
    contract: str  # canonical form (lowercase 0x hex for EVM, base58 for Tron)
    decimals: int


@dataclass(frozen=True)
class Network:
    name: str
    family: Family
    chain_id: int | None
    confirmations: int
    native_symbol: str
    display_name: str
    explorer_tx_url: str = ""
    assets: tuple[Asset, ...] = field(default=())

    def asset(self, symbol: str) -> Asset:
        wanted = symbol.upper()
        for asset in self.assets:
            if asset.symbol == wanted:
                return asset
        raise UnknownAsset(f"{symbol!r} is not accepted on {self.name}", param="asset")

    def asset_by_contract(self, contract: str) -> Asset | None:
        key = canonical_address(self.family, contract)
        for asset in self.assets:
            if asset.contract == key:
                return asset
        return None


class AssetRegistry:
    def __init__(self, networks: Iterable[Network]) -> None:
        self._networks = {n.name: n for n in networks}

    def __iter__(self) -> Any:
        return iter(self._networks.values())

    def network(self, name: str) -> Network:
        try:
            return self._networks[name]
        except KeyError:
            raise UnknownNetwork(
                f"{name!r} is not a supported network "
                f"(one of: {', '.join(sorted(self._networks))})",
                param="network",
            ) from None

    def asset(self, network: str, symbol: str) -> Asset:
        return self.network(network).asset(symbol)

    def names(self) -> list[str]:
        return sorted(self._networks)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AssetRegistry:
        """Build from `{"networks": {name: {family, chain_id, confirmations, native_symbol,
        display_name, explorer_tx_url, assets: {SYMBOL: {contract, decimals}}}}}`."""
        networks = []
        for name, spec in data["networks"].items():
            family: Family = spec["family"]
            assets = tuple(
                Asset(
                    network=name,
                    symbol=symbol.upper(),
                    contract=canonical_address(family, a["contract"]),
                    decimals=int(a["decimals"]),
                )
                for symbol, a in spec.get("assets", {}).items()
            )
            networks.append(
                Network(
                    name=name,
                    family=family,
                    chain_id=spec.get("chain_id"),
                    confirmations=int(spec["confirmations"]),
                    native_symbol=spec["native_symbol"],
                    display_name=spec.get("display_name", name),
                    explorer_tx_url=spec.get("explorer_tx_url", ""),
                    assets=assets,
                )
            )
        return cls(networks)

    def overlay(self, data: Mapping[str, Any]) -> AssetRegistry:
        """A copy with networks from `data` replacing or adding to these (devnet files)."""
        merged = {n.name: n for n in self}
        merged.update({n.name: n for n in AssetRegistry.from_mapping(data)})
        return AssetRegistry(merged.values())


MAINNET: Mapping[str, Any] = {
    "networks": {
        "ethereum": {
            "family": "evm",
            "chain_id": 1,
            "confirmations": 12,
            "native_symbol": "ETH",
            "display_name": "Ethereum (ERC-20)",
            "explorer_tx_url": "https://etherscan.io/tx/{tx}",
            "assets": {
                "USDT": {"contract": "0xdAC17F958D2ee523a2206206994597C13D831ec7", "decimals": 6},
                "USDC": {"contract": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "decimals": 6},
            },
        },
        "bsc": {
            "family": "evm",
            "chain_id": 56,
            "confirmations": 15,
            "native_symbol": "BNB",
            "display_name": "BNB Smart Chain (BEP-20)",
            "explorer_tx_url": "https://bscscan.com/tx/{tx}",
            "assets": {
                "USDT": {"contract": "0x55d398326f99059fF775485246999027B3197955", "decimals": 18},
                "USDC": {"contract": "0x8AC76a51cc950d9822D68b83fE1Ad97B32Cd580d", "decimals": 18},
            },
        },
        "tron": {
            "family": "tron",
            "chain_id": None,
            "confirmations": 19,
            "native_symbol": "TRX",
            "display_name": "Tron (TRC-20)",
            "explorer_tx_url": "https://tronscan.org/#/transaction/{tx}",
            "assets": {
                "USDT": {"contract": "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "decimals": 6},
                "USDC": {"contract": "TEkxiTehnzSmSe2XqrBj4w32RUN966rdz8", "decimals": 6},
            },
        },
    }
}
